"""Output formats: text (for people), json (ruff-compatible), sarif 2.1.0 and GitHub annotations."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from mllint import __version__
from mllint.diagnostics import Diagnostic, RelatedLocation, RuleFailure, SuggestedFix
from mllint.rule import Rule

FORMATS = ("text", "json", "sarif", "github")

_COLOURS = {"bold": "1", "red": "31", "cyan": "36", "yellow": "33", "dim": "2", "green": "32"}


class Style:
    """ANSI colour only when writing to a terminal, never when NO_COLOR is set or in CI pipes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        if os.environ.get("NO_COLOR"):
            return cls(False)
        if os.environ.get("FORCE_COLOR"):
            return cls(True)
        return cls(hasattr(stream, "isatty") and stream.isatty())

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_COLOURS[style] for style in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def absolute(path: Path) -> Path:
    """The absolute path as the user named it: symbolic links are not resolved."""
    return Path(os.path.abspath(path))


def display_path(path: Path) -> str:
    try:
        return absolute(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def _where(place: Diagnostic | RelatedLocation) -> str:
    cell = f"cell {place.cell}:" if place.cell is not None else ""
    return f"{display_path(place.path)}:{cell}{place.start.row}:{place.start.column}"


def is_applicable(fix: SuggestedFix | None, unsafe: bool) -> bool:
    return fix is not None and (fix.applicability == "safe" or unsafe)


def write_text(
    diagnostics: Sequence[Diagnostic],
    failures: Sequence[RuleFailure],
    stream: TextIO,
    style: Style,
    quiet: bool = False,
    fixed: int = 0,
    unsafe: bool = False,
    refuted_hidden: int = 0,
) -> None:
    for d in diagnostics:
        fixable = " [*]" if is_applicable(d.fix, unsafe) else ""
        head = f"{style(_where(d), 'bold')}: {style(d.code, 'red', 'bold')}{fixable} {d.message}"
        stream.write(head + _confirmation_tag(d, style) + "\n")
        for note in d.related:
            stream.write(f"  {style('note:', 'cyan')} {_where(note)}: {note.message}\n")
        if d.confirmation is not None and d.confirmation.status != "unconfirmed":
            stream.write(f"  {style('evidence:', 'cyan')} {d.confirmation.evidence} ({d.confirmation.method})\n")
    if quiet:
        return
    for failure in failures:
        stream.write(
            f"{style('error:', 'red', 'bold')} rule {failure.code} failed on "
            f"{display_path(failure.path)}: {failure.message}\n"
        )
    if refuted_hidden:
        stream.write(f"{refuted_hidden} refuted finding{'s' if refuted_hidden != 1 else ''} hidden (--show-refuted).\n")
    _write_summary(diagnostics, stream, style, fixed, unsafe)


def _write_summary(diagnostics: Sequence[Diagnostic], stream: TextIO, style: Style, fixed: int, unsafe: bool) -> None:
    found = len(diagnostics)
    if not found and not fixed:
        stream.write(style("All checks passed!", "green") + "\n")
        return
    total = found + fixed
    counts = f" ({fixed} fixed, {found} remaining)" if fixed else ""
    stream.write(style(f"Found {total} error{'s' if total != 1 else ''}{counts}.", "bold") + "\n")
    fixable = sum(1 for d in diagnostics if is_applicable(d.fix, unsafe))
    hidden = sum(1 for d in diagnostics if d.fix is not None and not is_applicable(d.fix, unsafe))
    if fixable:
        stream.write(f"[*] {fixable} fixable with the `--fix` option.\n")
    if hidden:
        stream.write(
            f"{hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with the `--unsafe-fixes` option.\n"
        )


def _confirmation_tag(d: Diagnostic, style: Style) -> str:
    """`` [confirmed]``, `` [refuted]``, `` [unconfirmed: reason]`` after a finding of ``--confirm``."""
    if d.confirmation is None:
        return ""
    if d.confirmation.status == "unconfirmed":
        return " " + style(f"[unconfirmed: {d.confirmation.evidence}]", "dim")
    return " " + style(f"[{d.confirmation.status}]", "green" if d.confirmation.status == "confirmed" else "yellow")


def write_statistics(diagnostics: Sequence[Diagnostic], stream: TextIO, style: Style) -> None:
    counts = Counter((d.code, d.name) for d in diagnostics)
    for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        stream.write(f"{count:>5}\t{style(code, 'red', 'bold')}\t{name}\n")


def _position(row: int, column: int) -> dict[str, int]:
    return {"row": row, "column": column}


def _fix_to_json(fix: SuggestedFix | None) -> dict[str, Any] | None:
    """ruff's shape: applicability, message, edits with content and locations."""
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": edit.content,
                "location": _position(edit.start.row, edit.start.column),
                "end_location": _position(edit.end.row, edit.end.column),
            }
            for edit in fix.edits
        ],
    }


def diagnostic_to_json(d: Diagnostic) -> dict[str, Any]:
    """ruff 0.17's JSON fields, then ours (``related``, extra keys other tools ignore)."""
    return {
        "cell": d.cell,
        "code": d.code,
        "end_location": _position(d.end.row, d.end.column),
        "filename": str(absolute(d.path)),
        "fix": _fix_to_json(d.fix),
        "location": _position(d.start.row, d.start.column),
        "message": d.message,
        "noqa_row": d.noqa_row,
        "url": d.url,
        "name": d.name,
        "severity": d.severity,
        "related": [
            {
                "filename": str(absolute(note.path)),
                "location": _position(note.start.row, note.start.column),
                "end_location": _position(note.end.row, note.end.column),
                "message": note.message,
                "cell": note.cell,
            }
            for note in d.related
        ],
        **_confirmation_json(d),
    }


def _confirmation_json(d: Diagnostic) -> dict[str, Any]:
    """``confirmation: {status, method, evidence}`` when the run confirmed findings (else nothing)."""
    return {"confirmation": asdict(d.confirmation)} if d.confirmation is not None else {}


def write_json(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    json.dump([diagnostic_to_json(d) for d in diagnostics], stream, indent=2)
    stream.write("\n")


_SARIF_LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _sarif_region(start_row: int, start_col: int, end_row: int, end_col: int) -> dict[str, int]:
    return {"startLine": start_row, "startColumn": start_col, "endLine": end_row, "endColumn": end_col}


def _sarif_location(path: Path, region: dict[str, int], message: str | None = None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": absolute(path).as_uri()}, "region": region}
    }
    if message is not None:
        location["message"] = {"text": message}
    return location


def sarif_document(diagnostics: Sequence[Diagnostic], rules: Sequence[type[Rule]]) -> dict[str, Any]:
    described = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.documentation()},
            "help": {"text": rule.documentation(), "markdown": rule.documentation()},
            "helpUri": rule.url(),
            "defaultConfiguration": {"level": _SARIF_LEVELS[rule.severity], "enabled": rule.default_enabled},
        }
        for rule in rules
    ]
    index = {rule.code: position for position, rule in enumerate(rules)}
    results = []
    for d in diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "level": _SARIF_LEVELS[d.severity],
            "message": {"text": d.message},
            "locations": [_sarif_location(d.path, _sarif_region(d.start.row, d.start.column, d.end.row, d.end.column))],
        }
        if d.code in index:
            result["ruleIndex"] = index[d.code]
        properties = ({"cell": d.cell} if d.cell is not None else {}) | _confirmation_json(d)
        if properties:
            result["properties"] = properties
        if d.related:
            result["relatedLocations"] = [
                {
                    "id": number,
                    **_sarif_location(
                        n.path, _sarif_region(n.start.row, n.start.column, n.end.row, n.end.column), n.message
                    ),
                }
                for number, n in enumerate(d.related)
            ]
        results.append(result)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mllint",
                        "version": __version__,
                        "informationUri": "https://github.com/mllint-dev/mllint",
                        "rules": described,
                    }
                },
                "results": results,
            }
        ],
    }


def write_sarif(diagnostics: Sequence[Diagnostic], rules: Sequence[type[Rule]], stream: TextIO) -> None:
    json.dump(sarif_document(diagnostics, rules), stream, indent=2)
    stream.write("\n")


def _escape_github(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def write_github(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    levels = {"error": "error", "warning": "warning", "info": "notice"}
    for d in diagnostics:
        properties = ",".join(
            [
                f"file={_escape_github(display_path(d.path), True)}",
                f"line={d.start.row}",
                f"col={d.start.column}",
                f"endLine={d.end.row}",
                f"endColumn={d.end.column}",
                f"title={d.code}",
            ]
        )
        message = _escape_github(f"{_where(d)}: {d.code} {d.message}{_confirmation_tag(d, Style(False))}")
        stream.write(f"::{levels[d.severity]} {properties}::{message}\n")
