"""The ``mllint`` command line, modelled on ruff's."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from mllint import __version__, autofix, output
from mllint.cache import CACHE_FOLDER, Cache, settings_salt
from mllint.config import ConfigError, Settings, discover, override
from mllint.confirm.runner import ConfirmOptions, confirm, torch_available
from mllint.discovery import discover_files
from mllint.registry import all_rules, rule_by_code, selected_rules
from mllint.rule import Rule
from mllint.runner import RunResult, default_jobs, run

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
SUBCOMMANDS = ("check", "rule", "rules", "server", "version")


def _codes(value: str) -> list[str]:
    return [code.strip().upper() for code in value.split(",") if code.strip()]


def _add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders to lint (default: .)")
    parser.add_argument("--select", type=_codes, help="comma-separated rule codes or prefixes to enable")
    parser.add_argument("--extend-select", type=_codes, help="rule codes or prefixes to enable in addition")
    parser.add_argument("--ignore", type=_codes, help="rule codes or prefixes to disable")
    parser.add_argument(
        "--exclude", type=lambda v: v.split(","), help="file patterns to exclude (replaces the defaults)"
    )
    parser.add_argument("--extend-exclude", type=lambda v: v.split(","), help="file patterns to exclude in addition")
    parser.add_argument(
        "--force-exclude", action="store_true", default=None, help="apply exclusions to files named explicitly too"
    )
    parser.add_argument("--config", type=Path, help="a pyproject.toml (or TOML file) to read settings from")
    parser.add_argument("--output-format", choices=output.FORMATS, default="text")
    parser.add_argument("--exit-zero", action="store_true", help="exit 0 even when findings are reported")
    parser.add_argument("--statistics", action="store_true", help="count findings per rule")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    parser.add_argument(
        "--cache-dir", type=Path, help="the cache's folder (default: .mllint_cache at the project root)"
    )
    parser.add_argument("--fix", action="store_true", help="apply safe fixes, then report what remains")
    parser.add_argument("--unsafe-fixes", action="store_true", help="apply (and mark) unsafe fixes too")
    parser.add_argument("--diff", action="store_true", help="print the fixes as a unified diff; change nothing")
    parser.add_argument("--fix-only", action="store_true", help="apply fixes and report nothing else")
    parser.add_argument("-j", "--jobs", type=int, help="worker processes (default: all cores)")
    gitignore = parser.add_mutually_exclusive_group()
    gitignore.add_argument("--respect-gitignore", dest="respect_gitignore", action="store_true", default=None)
    gitignore.add_argument("--no-respect-gitignore", dest="respect_gitignore", action="store_false")
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="run the models that findings concern (executes the project's code) to confirm or refute them",
    )
    parser.add_argument("--show-refuted", action="store_true", help="with --confirm: also show refuted findings")
    parser.add_argument("--confirm-timeout", type=float, help="with --confirm: seconds per model (default: 30)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of internal errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mllint", description="Find the silent bugs of machine-learning code.")
    parser.add_argument("--version", action="version", version=f"mllint {__version__}")
    commands = parser.add_subparsers(dest="command")
    _add_check_arguments(commands.add_parser("check", help="lint files (the default command)"))
    rule = commands.add_parser("rule", help="show a rule's documentation")
    rule.add_argument("code", help="a rule code (ML001) or name (double-softmax)")
    rule.add_argument("--output-format", choices=("text", "json"), default="text")
    rules = commands.add_parser("rules", help="list all rules")
    rules.add_argument("--output-format", choices=("text", "json", "markdown"), default="text")
    commands.add_parser("server", help="run the language server over stdin/stdout (needs the lsp extra)")
    commands.add_parser("version", help="print the version")
    return parser


class Progress:
    """A one-line counter on a terminal for runs that take more than a moment; silent otherwise."""

    DELAY = 1.0

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self.done = 0
        self.started = time.monotonic()
        self.shown = False

    def advance(self, _path: Path) -> None:
        self.done += 1
        if not self.enabled or time.monotonic() - self.started < self.DELAY:
            return
        if self.done % 25 == 0 or self.done == self.total:
            self.stream.write(f"\rChecking files: {self.done}/{self.total}")
            self.stream.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def load_settings(args: argparse.Namespace) -> Settings:
    start = args.paths[0] if args.paths else Path.cwd()
    settings = discover(start, args.config)
    return override(
        settings,
        select=tuple(args.select) if args.select is not None else None,
        extend_select=tuple(settings.extend_select) + tuple(args.extend_select or ()) if args.extend_select else None,
        ignore=tuple(settings.ignore) + tuple(args.ignore) if args.ignore else None,
        exclude=tuple(args.exclude) if args.exclude else None,
        extend_exclude=tuple(settings.extend_exclude) + tuple(args.extend_exclude) if args.extend_exclude else None,
        respect_gitignore=args.respect_gitignore,
        force_exclude=args.force_exclude,
    )


def command_check(args: argparse.Namespace) -> int:
    if args.confirm and (args.fix or args.fix_only or args.diff):
        sys.stderr.write("error: --confirm reports findings; it cannot be combined with --fix, --fix-only or --diff\n")
        return EXIT_ERROR
    if args.confirm and not torch_available():
        sys.stderr.write("error: --confirm needs torch: install it with `pip install torch==2.13.0`\n")
        return EXIT_ERROR
    settings = load_settings(args)
    rules = selected_rules(settings)
    files = list(discover_files(args.paths or [Path(".")], settings))
    jobs = args.jobs if args.jobs and args.jobs > 0 else default_jobs()
    cache = None
    if not args.no_cache and not args.confirm:  # what --confirm runs is not cached
        folder = args.cache_dir or settings.cache_dir or settings.root / CACHE_FOLDER
        cache = Cache(folder, settings_salt(settings, [rule.code for rule in rules]))

    def lint(overrides: dict[Path, bytes]) -> RunResult:
        progress = Progress(len(files), sys.stderr, enabled=not args.quiet)
        try:
            return run(
                files,
                rules,
                settings,
                on_file=progress.advance,
                jobs=jobs,
                cache=cache,
                overrides=overrides,
                probes=args.confirm,
            )
        finally:
            progress.close()

    if args.fix or args.fix_only or args.diff:
        return _check_and_fix(lint, rules, args)
    result = lint({})
    hidden = confirm_findings(result, rules, settings, args, jobs) if args.confirm else 0
    report(result, rules, args, hidden=hidden)
    return _exit_code(result, args)


def _check_and_fix(
    lint: Callable[[dict[Path, bytes]], RunResult], rules: list[type[Rule]], args: argparse.Namespace
) -> int:
    outcome = autofix.fix(lint, unsafe=args.unsafe_fixes)
    fixed = sum(outcome.fixed[path] for path in outcome.changed)
    if args.diff:
        sys.stdout.write(autofix.unified_diff(outcome, output.display_path))
        if not args.quiet:
            sys.stderr.write(f"Would fix {fixed} error{'s' if fixed != 1 else ''}.\n")
        return EXIT_FINDINGS if outcome.changed and not args.exit_zero else EXIT_CLEAN
    autofix.write(outcome)
    result = outcome.result
    if args.fix_only:
        if not args.quiet:
            sys.stdout.write(f"Fixed {fixed} error{'s' if fixed != 1 else ''}.\n")
        return EXIT_ERROR if result.failures else EXIT_CLEAN
    report(result, rules, args, fixed=fixed)
    return _exit_code(result, args)


def _exit_code(result: RunResult, args: argparse.Namespace) -> int:
    if result.failures:
        return EXIT_ERROR
    refuted = [d for d in result.diagnostics if d.confirmation is not None and d.confirmation.status == "refuted"]
    if len(result.diagnostics) > len(refuted) and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def confirm_findings(
    result: RunResult, rules: list[type[Rule]], settings: Settings, args: argparse.Namespace, jobs: int
) -> int:
    """Run the models the findings concern; refuted findings are dropped unless asked for.
    Returns how many were dropped."""
    options = ConfirmOptions(
        timeout=args.confirm_timeout or settings.confirm_timeout or ConfirmOptions.timeout,
        memory_mb=settings.confirm_memory_mb or ConfirmOptions.memory_mb,
        factories=settings.confirm_factories,
        roots=(settings.root,),
        jobs=jobs,
    )
    probed = confirm(result.diagnostics, [rule.code for rule in rules if rule.dynamic_check], options)
    if args.verbose:
        for probe, outcome in probed.items():
            timing = f"{outcome.seconds:.2f} s" if outcome.seconds is not None else "-"
            if outcome.torch_import_seconds is not None:
                timing += f" (besides {outcome.torch_import_seconds:.2f} s importing torch)"
            sys.stderr.write(f"confirm: {probe.qualname} [{probe.check}]: {outcome.confirmation.status}, {timing}\n")
    if args.show_refuted:
        return 0
    kept = [d for d in result.diagnostics if d.confirmation is None or d.confirmation.status != "refuted"]
    hidden = len(result.diagnostics) - len(kept)
    result.diagnostics = kept
    return hidden


def report(
    result: RunResult, rules: list[type[Rule]], args: argparse.Namespace, fixed: int = 0, hidden: int = 0
) -> None:
    stream = sys.stdout
    style = output.Style.for_stream(stream)
    if args.statistics:
        output.write_statistics(result.diagnostics, stream, style)
    elif args.output_format == "json":
        output.write_json(result.diagnostics, stream)
    elif args.output_format == "sarif":
        output.write_sarif(result.diagnostics, rules, stream)
    elif args.output_format == "github":
        output.write_github(result.diagnostics, stream)
    else:
        output.write_text(
            result.diagnostics,
            result.failures,
            stream,
            style,
            quiet=args.quiet,
            fixed=fixed,
            unsafe=args.unsafe_fixes,
            refuted_hidden=hidden,
        )
    if args.output_format != "text":
        for failure in result.failures:
            sys.stderr.write(f"error: rule {failure.code} failed on {failure.path}: {failure.message}\n")


def command_rule(args: argparse.Namespace) -> int:
    rule = rule_by_code(args.code)
    if rule is None:
        sys.stderr.write(f"error: unknown rule `{args.code}` (see `mllint rules`)\n")
        return EXIT_ERROR
    if args.output_format == "json":
        print(json.dumps(_rule_json(rule), indent=2))
    else:
        print(f"# {rule.name} ({rule.code})\n")
        print(f"{rule.summary}\n")
        print(f"Default: {'on' if rule.default_enabled else 'off'}, severity {rule.severity}\n")
        print(rule.documentation())
    return EXIT_CLEAN


def _rule_json(rule: type[Rule]) -> dict[str, object]:
    return {
        "code": rule.code,
        "name": rule.name,
        "summary": rule.summary,
        "severity": rule.severity,
        "default_enabled": rule.default_enabled,
        "explanation": rule.documentation(),
        "url": rule.url(),
    }


def command_rules(args: argparse.Namespace) -> int:
    rules = all_rules()
    if args.output_format == "json":
        print(json.dumps([_rule_json(rule) for rule in rules], indent=2))
        return EXIT_CLEAN
    if args.output_format == "markdown":
        print(rules_markdown(rules))
        return EXIT_CLEAN
    width = max((len(rule.name) for rule in rules), default=0)
    for rule in rules:
        state = "on " if rule.default_enabled else "off"
        print(f"{rule.code}  {rule.name:<{width}}  {state}  {rule.summary}")
    return EXIT_CLEAN


def rules_markdown(rules: Sequence[type[Rule]]) -> str:
    rows = ["| code | name | default | finds |", "|---|---|---|---|"]
    for rule in rules:
        state = "on" if rule.default_enabled else "off"
        rows.append(f"| {rule.code} | {rule.name} | {state} | {rule.summary} |")
    return "\n".join(rows)


def command_server(_args: argparse.Namespace) -> int:
    try:
        from mllint.lsp import serve
    except ModuleNotFoundError as error:
        if error.name not in ("pygls", "lsprotocol"):
            raise
        sys.stderr.write("error: `mllint server` needs the lsp extra: pip install 'mllint-silent-bugs[lsp]'\n")
        return EXIT_ERROR
    return serve()


COMMANDS = {"check": command_check, "rule": command_rule, "rules": command_rules, "server": command_server}


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """``mllint src/`` means ``mllint check src/``, as with ruff."""
    argv = list(argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "check")
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    if args.command == "version":
        print(f"mllint {__version__}")
        return EXIT_CLEAN
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader stopped reading (``mllint src | head``): nobody is left to tell; keep the
        # interpreter's final flush of stdout from failing again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the last line of defence: a message, not a traceback
        if getattr(args, "verbose", False):
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"error: internal error: {type(error).__name__}: {error} (run with --verbose for details)\n"
            )
        return EXIT_ERROR
