"""Fixes: rules' node-anchored edits turned into text edits, applied, verified and written.

Edits are applied to the text, not to a regenerated tree, so formatting and comments outside the
edited spans stay byte for byte. A fixed text is parsed again before it is kept; a file is written
through a temporary file and a rename, so an interrupted write leaves the original intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import libcst as cst
from libcst._nodes.internal import CodegenState  # what Module.code_for_node uses, with indentation

from mllint.context import ModuleContext
from mllint.diagnostics import Diagnostic, Position, SuggestedFix, TextEdit
from mllint.notebook import Notebook
from mllint.rule import Edit, Fix

_INDENT = re.compile(r"[ \t]*")


class FixError(ValueError):
    """An edit the engine cannot place (a statement sharing its line with another, say)."""


def resolve(ctx: ModuleContext, fix: Fix) -> SuggestedFix | None:
    """Text edits for a rule's fix; None when an edit cannot be placed safely."""
    lines = ctx.source.splitlines(keepends=True)
    try:
        edits = tuple(edit for change in fix.edits for edit in _text_edits(ctx, lines, change))
    except FixError:
        return None
    return SuggestedFix("safe" if fix.safe else "unsafe", fix.message, edits)


def _text_edits(ctx: ModuleContext, lines: list[str], edit: Edit) -> list[TextEdit]:
    if edit.kind == "replace":
        start, end = _span(ctx, edit.node)
        content = edit.content if isinstance(edit.content, str) else _in_place(ctx, edit.node, edit.content)
        return [TextEdit(content, start, end)]
    assert isinstance(edit.content, str)
    start, end = _span(ctx, _statement(ctx, edit.node))
    indent = _own_lines(lines, start, end)
    if edit.kind == "before":
        return [TextEdit(_indented(edit.content, indent), Position(start.row, 1), Position(start.row, 1))]
    if edit.kind == "after":
        return [TextEdit(_indented(edit.content, indent), Position(end.row + 1, 1), Position(end.row + 1, 1))]
    removal = TextEdit("", Position(start.row, 1), Position(end.row + 1, 1))
    if edit.kind == "remove":
        return [removal]
    assert edit.anchor is not None
    statement, anchor = _statement(ctx, edit.node), _statement(ctx, edit.anchor)
    if ctx.parent(statement) is not ctx.parent(anchor):
        raise FixError("a statement moves within its own block only: elsewhere it would run under other conditions")
    anchor_start, anchor_end = _span(ctx, anchor)
    if anchor_start.row <= end.row and anchor_end.row >= start.row:
        raise FixError("a statement cannot move into itself")
    target_indent = _own_lines(lines, anchor_start, anchor_end)
    moved = "\n".join(line.rstrip("\r\n").removeprefix(indent) for line in lines[start.row - 1 : end.row])
    row = anchor_start.row if edit.kind == "move_before" else anchor_end.row + 1
    return [removal, TextEdit(_indented(moved, target_indent), Position(row, 1), Position(row, 1))]


def _in_place(ctx: ModuleContext, replaced: cst.CSTNode, node: cst.CSTNode) -> str:
    """``node``'s code where ``replaced`` stands: continuation lines (inside parentheses) carry the
    indentation of the blocks around it, which ``Module.code_for_node`` cannot know."""
    state = CodegenState(default_indent=ctx.tree.default_indent, default_newline=ctx.tree.default_newline)
    blocks = [ancestor for ancestor in ctx.ancestors(replaced) if isinstance(ancestor, cst.IndentedBlock)]
    for block in reversed(blocks):
        state.increase_indent(ctx.tree.default_indent if block.indent is None else block.indent)
    node._codegen(state)
    return "".join(state.tokens)


def _span(ctx: ModuleContext, node: cst.CSTNode) -> tuple[Position, Position]:
    code_range = ctx.range(node)
    return (
        Position(code_range.start.line, code_range.start.column + 1),
        Position(code_range.end.line, code_range.end.column + 1),
    )


def _statement(ctx: ModuleContext, node: cst.CSTNode) -> cst.CSTNode:
    statement = ctx.statement_line(node)
    if statement is None:
        raise FixError("not inside a statement")
    return statement


def _own_lines(lines: list[str], start: Position, end: Position) -> str:
    """The indentation of a statement that has its lines to itself (comments after it allowed)."""
    first = lines[start.row - 1]
    indent = _INDENT.match(first).group()  # type: ignore[union-attr]
    if len(indent) != start.column - 1:
        raise FixError("the statement shares its first line with other code")
    rest = lines[end.row - 1][end.column - 1 :].strip()
    if rest and not rest.startswith("#"):
        raise FixError("the statement shares its last line with other code")
    return indent


def _indented(content: str, indent: str) -> str:
    lines = content.rstrip("\n").split("\n")
    return "".join(f"{indent}{line}\n" if line.strip() else "\n" for line in lines)


def apply(source: str, edits: Iterable[TextEdit]) -> str:
    """The text with non-overlapping edits applied (the caller has dropped overlapping ones)."""
    edits = list(edits)
    newline = "\r\n" if "\r\n" in source else "\n"
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")) and any(e.end.row > len(lines) for e in edits):
        lines[-1] += newline  # an insertion after the last line needs that line ended
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    text = "".join(lines)

    def offset(position: Position) -> int:
        if position.row > len(lines):
            return len(text)
        return offsets[position.row - 1] + position.column - 1

    for edit in sorted(edits, key=lambda e: (offset(e.start), offset(e.end)), reverse=True):
        content = edit.content.replace("\n", newline) if newline != "\n" else edit.content
        text = text[: offset(edit.start)] + content + text[offset(edit.end) :]
    return text


def choose(diagnostics: Sequence[Diagnostic], unsafe: bool) -> list[SuggestedFix]:
    """The fixes to apply in one pass: applicable ones, first come first served, none overlapping."""
    chosen: list[SuggestedFix] = []
    taken: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = []
    for d in diagnostics:
        fix = d.fix
        if fix is None or (fix.applicability != "safe" and not unsafe):
            continue
        spans = [_extent(edit) for edit in fix.edits]
        if any(_overlaps(span, other) for span in spans for other in taken):
            continue
        taken.extend(spans)
        chosen.append(fix)
    return chosen


def _extent(edit: TextEdit) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    cell = edit.cell or 0
    return (cell, edit.start.row, edit.start.column), (cell, edit.end.row, edit.end.column)


def _overlaps(a: tuple[tuple[int, int, int], ...], b: tuple[tuple[int, int, int], ...]) -> bool:
    # touching insertions at one point are ordered arbitrarily: treat them as overlapping too
    return a[0] <= b[1] and b[0] <= a[1]


def apply_to_notebook(document_text: str, edits: Iterable[TextEdit], notebook: Notebook) -> str:
    """A notebook's JSON with edits applied to the sources of the cells they name.

    Edits of a line that mllint masked (a magic) are refused: the program the rules saw did not
    contain it.
    """
    document = json.loads(document_text)
    by_cell: dict[int, list[TextEdit]] = {}
    for edit in edits:
        if edit.cell is None:
            raise FixError("an edit of a notebook names no cell")
        by_cell.setdefault(edit.cell, []).append(edit)
    for number, cell_edits in by_cell.items():
        cell = document["cells"][number - 1]
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        original, seen = text.splitlines(), notebook.cell_lines(number)
        for edit in cell_edits:
            rows = range(edit.start.row, edit.end.row + (1 if edit.end.column > 1 else 0))
            if any(row <= len(original) and original[row - 1] != seen[row - 1] for row in rows):
                raise FixError("the fix touches IPython syntax")
        fixed = apply(text, cell_edits)
        if not text.endswith("\n"):
            fixed = fixed.removesuffix("\n")  # cells keep their last line unterminated
        cell["source"] = fixed.splitlines(keepends=True) if isinstance(source, list) else fixed
    indent = _json_indent(document_text)
    return json.dumps(document, indent=indent, ensure_ascii=False) + ("\n" if document_text.endswith("\n") else "")


def _json_indent(text: str) -> int | None:
    match = re.search(r"\n( +)\"", text)
    return len(match.group(1)) if match else None


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the file's content: a temporary file in the same folder, then a rename."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".mllint-fix")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
