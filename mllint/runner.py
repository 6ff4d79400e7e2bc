"""Reading, parsing, indexing and checking: a run from paths to diagnostics."""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import gc
import io
import multiprocessing
import os
import re
import sys
import threading
import tokenize
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import TypeVar

import libcst as cst

from mllint.cache import Cache
from mllint.config import Settings
from mllint.confirm.probe import describe
from mllint.construction import unchecked_node_construction
from mllint.context import ModuleContext
from mllint.diagnostics import (
    INVALID_FILE_CODE,
    INVALID_FILE_NAME,
    Diagnostic,
    Position,
    RelatedLocation,
    RuleFailure,
    SuggestedFix,
    TextEdit,
)
from mllint.fixes import resolve as resolve_fix
from mllint.incremental import Parse, StatementParser
from mllint.noqa import is_suppressed, noqa_lines
from mllint.notebook import Notebook, NotebookError, parse_notebook
from mllint.rule import Finding, Rule
from mllint.semantic.project import ProjectIndex

T = TypeVar("T")


@dataclass
class RunResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)
    files_checked: int = 0


class SourceError(Exception):
    """A file that cannot be checked; becomes an ML000 diagnostic."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


def module_name_for(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted module name: the path below the run's root, or below the topmost package folder.

    Names from the root keep two ``main.py`` of different example folders apart; imports that
    name a shorter path are matched by suffix in the project index.
    """
    path = path.resolve()
    is_package = path.name == "__init__.py"
    try:
        parts = list(path.relative_to(root).parts)
    except ValueError:
        parts = [path.name]
        folder = path.parent
        while (folder / "__init__.py").is_file() and folder != folder.parent:
            parts.insert(0, folder.name)
            folder = folder.parent
    parts[-1] = path.stem
    if is_package:
        parts.pop()
    return ".".join(part for part in parts if part.isidentifier()), is_package


def unique_module_name(module_name: str, project: ProjectIndex) -> str:
    """Files outside the root can share a name (two ``train.py``); keep their modules apart."""
    candidate, number = module_name, 1
    while project.is_registered(candidate):
        number += 1
        candidate = f"{module_name}_{number}"
    return candidate


def decode_source(data: bytes) -> str:
    """Text of a Python file: UTF-8 (with or without BOM) or the encoding its coding cookie names."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        reason = getattr(error, "reason", None) or str(error)
        raise SourceError(f"cannot decode file: {reason}") from error
    if "\0" in text:
        raise SourceError("file contains a NUL byte")
    return text.removeprefix("\ufeff")


def read_module(path: Path, data: bytes | None = None) -> tuple[str, Notebook | None]:
    """The Python text of a file (or of ``data``, its unsaved content); for a notebook, its joined
    code cells and their layout."""
    if data is None:
        data = _read_bytes(path)
    if path.suffix == ".ipynb":
        try:
            notebook = parse_notebook(data)
        except NotebookError as error:
            raise SourceError(str(error)) from error
        return notebook.source, notebook
    return decode_source(data), None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError as error:
        raise SourceError("is a directory, not a Python file") from error
    except FileNotFoundError as error:
        raise SourceError("no such file (or a broken symbolic link)") from error
    except OSError as error:
        raise SourceError(f"cannot read file: {error.strerror or error}") from error


#: a thread stack and recursion limit deep enough for expressions nested thousands of levels
DEEP_STACK_BYTES = 512 * 1024 * 1024
DEEP_RECURSION_LIMIT = 100_000
#: deeper bracket nesting than CPython accepts: such a file is invalid Python
MAX_BRACKET_DEPTH = 200
_NOT_BRACKETS = re.compile(r"[^()\[\]{}]+")
#: the change of nesting depth each (ASCII) bracket makes
_DEPTH_STEPS = [1 if chr(code) in "([{" else -1 if chr(code) in ")]}" else 0 for code in range(128)]


_deep_executors: dict[int, ThreadPoolExecutor] = {}


def in_deep_stack(function: Callable[..., T], *args: object) -> T:
    """Run ``function`` on a thread with a large stack: deep nesting raises, never segfaults.

    One such thread per process, started once: starting a thread with a large stack costs
    milliseconds, too much to pay per file.
    """
    executor = _deep_executors.get(os.getpid())  # threads do not survive a fork
    if executor is None:
        if sys.getrecursionlimit() < DEEP_RECURSION_LIMIT:
            sys.setrecursionlimit(DEEP_RECURSION_LIMIT)
        previous = threading.stack_size(DEEP_STACK_BYTES)
        try:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllint-check")
            executor.submit(int).result()  # the thread starts now, with the large stack
        finally:
            threading.stack_size(previous)
        _deep_executors[os.getpid()] = executor
    return executor.submit(function, *args).result()


def _bracket_depth(source: str) -> int:
    """Nesting of brackets, counting those in strings too (an upper bound, for a cheap gate)."""
    brackets = _NOT_BRACKETS.sub("", source).encode("ascii")
    return max(accumulate(map(_DEPTH_STEPS.__getitem__, brackets), initial=0))


def parse_source(source: str) -> cst.Module:
    if _bracket_depth(source) > MAX_BRACKET_DEPTH:
        # CPython refuses such nesting; its parser says so safely, where a native parser may crash
        try:
            ast.parse(source)
        except SyntaxError as error:
            raise SourceError(f"syntax error: {error.msg}", error.lineno or 1, error.offset or 1) from error
        except (RecursionError, MemoryError) as error:
            raise SourceError("too deeply nested to parse") from error
    try:
        with unchecked_node_construction():
            return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        # CPython's own message and position, which users know from their interpreter
        reason = re.sub(r"^(?:parser error: )?(?:error at \d+:\d+: )?", "", error.message)
        try:
            ast.parse(source)
        except SyntaxError as python_error:
            where = (python_error.lineno or 1, python_error.offset or 1)
            raise SourceError(f"syntax error: {python_error.msg}", *where) from error
        except (RecursionError, MemoryError, ValueError):
            raise SourceError(f"syntax error: {reason}", error.editor_line, error.editor_column) from error
        # CPython accepts what libcst does not (a construct its grammar lacks): not the user's error
        raise SourceError(
            f"not checked: libcst cannot parse this valid Python ({reason})", error.editor_line, error.editor_column
        ) from error
    except RecursionError as error:
        raise SourceError("too deeply nested to parse") from error


def build_context(path: Path, source: str, root: Path) -> ModuleContext:
    module_name, is_package = module_name_for(path, root)
    return make_context(path, source, module_name, is_package)


def make_context(
    path: Path, source: str, module_name: str, is_package: bool = False, parse: Parse = parse_source
) -> ModuleContext:
    tree = parse(source)
    try:
        return ModuleContext(path, source, tree, module_name, is_package)
    except RecursionError as error:
        raise SourceError("too deeply nested to analyze") from error


def load_context(path: Path, source: str, module_name: str) -> ModuleContext:
    """The project index's loader: parses a registered module when a query first needs it."""
    return make_context(path, source, module_name, path.name == "__init__.py")


def invalid_file(path: Path, error: SourceError) -> Diagnostic:
    where = Position(error.row, error.column)
    return Diagnostic(INVALID_FILE_CODE, INVALID_FILE_NAME, str(error), path, where, where, "error")


def _ignored_codes(path: Path, settings: Settings) -> tuple[str, ...]:
    try:
        relative = path.resolve().relative_to(settings.root).as_posix()
    except ValueError:
        relative = path.as_posix()
    codes: list[str] = []
    for pattern, ignored in settings.per_file_ignores.items():
        if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(path.name, pattern):
            codes.extend(code.upper() for code in ignored)
    return tuple(codes)


def to_diagnostic(rule: type[Rule], ctx: ModuleContext, finding: Finding, probe: bool = False) -> Diagnostic:
    """``probe``: describe the model a confirmable finding concerns, for ``--confirm`` to run."""
    span = ctx.range(finding.node)
    related = []
    for note in finding.related:
        owner = note.context or ctx
        note_span = owner.range(note.node)
        related.append(
            RelatedLocation(
                owner.path,
                Position(note_span.start.line, note_span.start.column + 1),
                Position(note_span.end.line, note_span.end.column + 1),
                note.message,
            )
        )
    return Diagnostic(
        code=rule.code,
        name=rule.name,
        message=finding.message,
        path=ctx.path,
        start=Position(span.start.line, span.start.column + 1),
        end=Position(span.end.line, span.end.column + 1),
        severity=rule.severity,
        url=rule.url(),
        noqa_row=span.start.line,
        related=related,
        fix=resolve_fix(ctx, finding.fix) if finding.fix is not None else None,
        probe=(
            describe(ctx.project, rule.dynamic_check, finding.subject)
            if probe and rule.dynamic_check and finding.subject and ctx.project
            else None
        ),
    )


def check_module(
    ctx: ModuleContext, rules: Iterable[type[Rule]], settings: Settings, probes: bool = False
) -> tuple[list[Diagnostic], list[RuleFailure]]:
    """Run the rules on one indexed module (those its text is relevant to: see
    :meth:`Rule.relevant`); a rule that raises is recorded, never fatal."""
    ignored = _ignored_codes(ctx.path, settings)
    diagnostics: list[Diagnostic] = []
    failures: list[RuleFailure] = []
    for rule in rules:
        if any(rule.code.startswith(prefix) for prefix in ignored):
            continue
        try:
            found = [to_diagnostic(rule, ctx, finding, probes) for finding in rule().check(ctx)]
        except RecursionError:
            failures.append(RuleFailure(rule.code, ctx.path, "too deeply nested to analyze"))
            continue
        except Exception as error:  # noqa: BLE001 - one rule must never stop the others
            failures.append(RuleFailure(rule.code, ctx.path, f"{type(error).__name__}: {error}"))
            continue
        diagnostics.extend(found)
    if diagnostics:
        # comments are tokenized only in files that report something
        noqa = noqa_lines(ctx.source)
        diagnostics = [d for d in diagnostics if not is_suppressed(d.code, d.start.row, noqa)]
    return diagnostics, failures


@dataclass
class _Job:
    """What a worker process inherits (by fork) for checking registered modules."""

    project: ProjectIndex
    rules: list[type[Rule]]
    settings: Settings
    notebooks: dict[Path, Notebook]
    probes: bool = False


_job: _Job | None = None
#: other modules one file's check may parse for its cross-file questions
MAX_LOADS_PER_CHECK = 12
#: parsed modules a process keeps for cross-file queries before it frees them
MAX_PARSED_MODULES = 200
#: files this long are handed to the worker processes first (a few percent of a large tree)
LONG_FILE_CHARS = 100_000
#: files an editor session keeps the parsed statements of, for re-parsing their next version
KEPT_PARSES = 16


def _check_registered(item: tuple[Path, str]) -> tuple[Path, list[Diagnostic], list[RuleFailure]]:
    return in_deep_stack(_check_registered_here, item)


def _check_registered_here(item: tuple[Path, str]) -> tuple[Path, list[Diagnostic], list[RuleFailure]]:
    assert _job is not None
    path, module_name = item
    diagnostics, failures = check_registered(_job.project, path, module_name, _job.rules, _job.settings, _job.probes)
    return path, in_cells(diagnostics, _job.notebooks.get(path)), failures


def check_registered(
    project: ProjectIndex,
    path: Path,
    module_name: str,
    rules: list[type[Rule]],
    settings: Settings,
    probes: bool = False,
) -> tuple[list[Diagnostic], list[RuleFailure]]:
    """Check one registered module against the others of its project index."""
    source = project.source(module_name)
    rules = [rule for rule in rules if rule.relevant(source)]
    if not rules:
        # nothing here can matter to a selected rule: only CPython's cheap syntax check, no analysis
        return _syntax_only(path, source), []
    project.limit_loads(MAX_LOADS_PER_CHECK)
    try:
        ctx = project.load(module_name, strict=True)
    except SourceError as error:
        return [invalid_file(path, error)], []
    except Exception as error:  # noqa: BLE001 - a file that breaks the engine must not stop the run
        return [], [RuleFailure("engine", path, f"{type(error).__name__}: {error}")]
    assert ctx is not None
    diagnostics, failures = check_module(ctx, rules, settings, probes)
    project.trim(MAX_PARSED_MODULES)
    return diagnostics, failures


def _syntax_only(path: Path, source: str) -> list[Diagnostic]:
    try:
        ast.parse(source)
    except SyntaxError as error:
        where = SourceError(f"syntax error: {error.msg}", error.lineno or 1, error.offset or 1)
        return [invalid_file(path, where)]
    except (RecursionError, MemoryError, ValueError):
        return [invalid_file(path, SourceError("too deeply nested to parse"))]
    return []


def in_cells(diagnostics: list[Diagnostic], notebook: Notebook | None) -> list[Diagnostic]:
    """Rows of a notebook's joined source mapped to (cell, row in the cell), as ruff reports them."""
    if notebook is None:
        return diagnostics
    for d in diagnostics:
        d.cell, start_row = notebook.locate(d.start.row)
        end_row = d.end.row - d.start.row + start_row
        d.start, d.end = Position(start_row, d.start.column), Position(end_row, d.end.column)
        d.noqa_row = start_row if d.noqa_row is not None else None
        d.related = [_related_in_cells(note, d.path, notebook) for note in d.related]
        if d.fix is not None:
            d.fix = _fix_in_cells(d.fix, notebook)
    return diagnostics


def _fix_in_cells(fix: SuggestedFix, notebook: Notebook) -> SuggestedFix | None:
    """Edits located in cells; None when an edit spans two cells."""
    edits = []
    for edit in fix.edits:
        cell, start_row = notebook.locate(edit.start.row)
        end_cell, end_row = notebook.locate(edit.end.row)
        if end_cell != cell:
            if edit.end.column != 1 or end_row != 1:
                return None
            end_row = len(notebook.cell_lines(cell)) + 1  # up to the end of the cell's last line
        edits.append(
            TextEdit(edit.content, Position(start_row, edit.start.column), Position(end_row, edit.end.column), cell)
        )
    return SuggestedFix(fix.applicability, fix.message, tuple(edits))


def _related_in_cells(note: RelatedLocation, path: Path, notebook: Notebook) -> RelatedLocation:
    if note.path != path:
        return note
    cell, start_row = notebook.locate(note.start.row)
    end_row = note.end.row - note.start.row + start_row
    return RelatedLocation(
        note.path, Position(start_row, note.start.column), Position(end_row, note.end.column), note.message, cell
    )


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run(
    paths: Iterable[Path],
    rules: list[type[Rule]],
    settings: Settings,
    on_file: Callable[[Path], None] | None = None,
    jobs: int = 1,
    cache: Cache | None = None,
    overrides: Mapping[Path, bytes] | None = None,
    probes: bool = False,
) -> RunResult:
    """Lint files: every file is registered in the project index first, so that rules see facts
    across files; a module is parsed when it is checked or when another module's check needs it.
    With ``jobs`` > 1 the checks run in forked worker processes that share the registered sources.
    ``overrides`` gives the content of files whose text is not (yet) on disk; with ``probes``,
    findings a run can confirm carry the :class:`ModelProbe` that decides them."""
    with without_cyclic_collector():
        return _run(paths, rules, settings, on_file, jobs, cache, overrides or {}, probes)


@contextlib.contextmanager
def without_cyclic_collector() -> Iterator[None]:
    """Syntax trees are acyclic and freed by reference counting; the cyclic collector would
    traverse every node of every tree held, again and again (a third of the run time)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _run(
    paths: Iterable[Path],
    rules: list[type[Rule]],
    settings: Settings,
    on_file: Callable[[Path], None] | None,
    jobs: int,
    cache: Cache | None,
    overrides: Mapping[Path, bytes],
    probes: bool,
) -> RunResult:
    global _job
    result = RunResult()
    project = ProjectIndex(load_context)
    registered: list[tuple[Path, str]] = []
    notebooks: dict[Path, Notebook] = {}
    for path in paths:
        result.files_checked += 1
        try:
            source, notebook = read_module(path, overrides.get(path))
        except SourceError as error:
            result.diagnostics.append(invalid_file(path, error))
            continue
        if notebook is not None:
            notebooks[path] = notebook
        module_name = unique_module_name(module_name_for(path, settings.root)[0], project)
        project.register(module_name, path, source)
        registered.append((path, module_name))
    keys: dict[Path, str] = {}
    if cache is not None:
        fingerprints = project.fingerprints()
        pending = []
        for path, module_name in registered:
            keys[path] = cache.key(path, fingerprints[module_name])
            cached = cache.get(keys[path], path)
            if cached is None:
                pending.append((path, module_name))
                continue
            result.diagnostics.extend(cached)
            if on_file is not None:
                on_file(path)
        registered = pending
    _job = _Job(project, rules, settings, notebooks, probes)
    try:
        for path, diagnostics, failures in _map(registered, jobs):
            result.diagnostics.extend(diagnostics)
            result.failures.extend(failures)
            if cache is not None and not failures:
                cache.put(keys[path], diagnostics)
            if on_file is not None:
                on_file(path)
    finally:
        _job = None
    if cache is not None:
        cache.prune()
    result.diagnostics.sort(key=lambda d: d.sort_key)
    return result


def _map(registered: list[tuple[Path, str]], jobs: int) -> Iterator[tuple[Path, list[Diagnostic], list[RuleFailure]]]:
    jobs = min(jobs, len(registered))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(_check_registered, registered)
        return
    assert _job is not None
    _job.project.prepare()
    context = multiprocessing.get_context("fork")
    chunk = max(1, min(16, len(registered) // (jobs * 8)))
    with context.Pool(jobs) as pool:
        yield from pool.imap_unordered(_check_registered, _long_files_first(registered, _job.project), chunksize=chunk)


def _long_files_first(registered: list[tuple[Path, str]], project: ProjectIndex) -> list[tuple[Path, str]]:
    """The longest files first, the others in their order (neighbours share the modules they
    ask about): a long file handed out last keeps one process busy while the others wait."""
    length = {module_name: len(project.source(module_name)) for _, module_name in registered}
    long_files = [item for item in registered if length[item[1]] > LONG_FILE_CHARS]
    long_files.sort(key=lambda item: -length[item[1]])
    return long_files + [item for item in registered if length[item[1]] <= LONG_FILE_CHARS]


class LiveProject:
    """A project index kept between checks, as an editor needs it: the files of a folder are
    registered once from disk, an edited buffer replaces its module's text, and each check sees
    the other modules as last given (unsaved buffers included). Not thread-safe: one caller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.project = ProjectIndex(self._load)
        self._modules: dict[Path, str] = {}
        self._paths: dict[str, Path] = {}
        #: the files parsed most recently keep their statements: the next version of an edited
        #: buffer re-parses only the top-level statements whose text changed
        self._parsers: OrderedDict[Path, StatementParser] = OrderedDict()

    def _load(self, path: Path, source: str, module_name: str) -> ModuleContext:
        parser = self._parsers.pop(path, None) or StatementParser(parse_source)
        self._parsers[path] = parser
        while len(self._parsers) > KEPT_PARSES:
            self._parsers.popitem(last=False)
        return make_context(path, source, module_name, path.name == "__init__.py", parser.parse)

    def register_files(self, paths: Iterable[Path]) -> None:
        """Register files from disk (those already known keep their text); unreadable ones are skipped."""
        for path in paths:
            if path in self._modules or path.suffix != ".py":
                continue
            try:
                source, _ = read_module(path)
            except SourceError:
                continue
            self._register(path, source)

    def _register(self, path: Path, source: str) -> str:
        module_name = unique_module_name(module_name_for(path, self.settings.root)[0], self.project)
        self.project.register(module_name, path, source)
        self._modules[path] = module_name
        self._paths[module_name] = path
        return module_name

    def source(self, path: Path) -> str | None:
        module_name = self._modules.get(path)
        return self.project.source(module_name) if module_name is not None else None

    def update(self, path: Path, source: str) -> set[Path]:
        """Give a file new text (an edited buffer, or its disk copy after a change). Returns the
        files whose findings may change with it, this one included."""
        module_name = self._modules.get(path)
        if module_name is None:
            # a new module name can change how other modules' imports resolve: answers are rebuilt
            module_name = self._register(path, source)
            return self._paths_of(self.project.dependents(module_name))
        if self.project.source(module_name) == source:
            return {path}
        before = self.project.dependents(module_name)
        self.project.replace_source(module_name, source)
        return self._paths_of(before | self.project.dependents(module_name))

    def remove(self, path: Path) -> set[Path]:
        """Forget a file (deleted from disk); returns the files whose findings may change."""
        module_name = self._modules.pop(path, None)
        if module_name is None:
            return set()
        affected = self._paths_of(self.project.dependents(module_name) - {module_name})
        self.project.remove(module_name)
        del self._paths[module_name]
        return affected

    def _paths_of(self, module_names: Iterable[str]) -> set[Path]:
        return {self._paths[name] for name in module_names if name in self._paths}

    def check(self, path: Path, rules: list[type[Rule]]) -> tuple[list[Diagnostic], list[RuleFailure]]:
        """Findings for a registered file (none for an unknown one)."""
        module_name = self._modules.get(path)
        if module_name is None:
            return [], []
        with without_cyclic_collector():
            return in_deep_stack(check_registered, self.project, path, module_name, rules, self.settings)
