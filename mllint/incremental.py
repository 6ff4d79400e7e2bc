"""Parsing successive versions of a module, as an editor sends them, top-level statement by
top-level statement: an edit inside one function of a long file re-parses that function only.

A module's text is cut where a top-level statement starts on a line of its own (CPython's
parser, a fraction of libcst's cost, says where). Each piece parses on its own as a module; the
pieces whose text did not change since the previous version keep their parsed statements, and
the module is joined from them. The joined tree prints back to exactly the same text.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Callable

import libcst as cst

Parse = Callable[[str], cst.Module]


def top_level_pieces(source: str) -> list[str] | None:
    """The text cut before each top-level statement that starts a line; None when CPython's
    parser refuses the text (the caller's full parse then reports why)."""
    body = python_statements(source)
    if body is None:
        return None
    # lines as CPython numbers them (``str.splitlines`` also breaks at form feeds and the like)
    *complete, rest = source.split("\n")
    lines = [f"{line}\n" for line in complete] + ([rest] if rest else [])
    cuts = [0]
    previous_end = 0
    for statement in body:
        decorators = getattr(statement, "decorator_list", [])
        first = min([statement.lineno, *(decorator.lineno for decorator in decorators)])
        if previous_end and first > previous_end:
            cuts.append(first - 1)
        previous_end = statement.end_lineno or statement.lineno
    cuts.append(len(lines))
    return ["".join(lines[start:end]) for start, end in itertools.pairwise(cuts) if end > start]


@functools.lru_cache(maxsize=2)  # a check asks twice: to cut the text in pieces, and for positions
def python_statements(source: str) -> list[ast.stmt] | None:
    """The top-level statements CPython's parser finds, None when it refuses the text."""
    try:
        return ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def join(pieces: list[cst.Module]) -> cst.Module:
    """One module from modules parsed from consecutive pieces of its text."""
    body: list[cst.BaseStatement] = []
    carried: tuple[cst.EmptyLine, ...] = ()
    for piece in pieces:
        statements = list(piece.body)
        if carried and statements:
            # the lines after the previous piece's last statement lead this piece's first one
            statements[0] = statements[0].with_changes(leading_lines=(*carried, *statements[0].leading_lines))
            carried = ()
        body.extend(statements)
        carried = (*carried, *piece.footer)
    first, last = pieces[0], pieces[-1]
    indented = next((piece for piece in pieces if _has_indented_block(piece)), first)
    return first.with_changes(
        body=body,
        footer=carried,
        default_indent=indented.default_indent,
        has_trailing_newline=last.has_trailing_newline,
    )


def _has_indented_block(module: cst.Module) -> bool:
    # libcst takes a module's default indent from its first indented block, which only a top-level
    # compound statement with an indented body can hold
    return any(isinstance(getattr(statement, "body", None), cst.IndentedBlock) for statement in module.body)


class StatementParser:
    """Parses versions of one module, keeping the pieces of the last version for the next."""

    def __init__(self, parse: Parse) -> None:
        self._parse = parse
        self._pieces: dict[str, list[cst.Module]] = {}

    def parse(self, source: str) -> cst.Module:
        pieces = top_level_pieces(source) if "\r" not in source else None
        if not pieces:
            self._pieces = {}
            return self._parse(source)
        try:
            parsed = self._parse_pieces(pieces)
        except Exception:  # noqa: BLE001 - a piece that does not parse alone: the whole text says why
            parsed = []
        if not parsed or len({piece.default_indent for piece in parsed if _has_indented_block(piece)}) > 1:
            # blocks indented by their piece's default print with the module's: mixed indents parse whole
            self._pieces = {}
            return self._parse(source)
        return join(parsed)

    def _parse_pieces(self, pieces: list[str]) -> list[cst.Module]:
        kept: dict[str, list[cst.Module]] = {}
        parsed = []
        for text in pieces:
            earlier = self._pieces.get(text)
            # a piece's nodes appear once in a tree: a text repeated within the module is parsed again
            module = earlier.pop() if earlier else self._parse(text)
            kept.setdefault(text, []).append(module)
            parsed.append(module)
        self._pieces = kept
        return parsed
