"""Jupyter notebooks as one program: code cells joined in order, IPython syntax masked.

Rules see the notebook as a script (a scaler fit in cell 3 and a split in cell 5 is one data
flow); findings are mapped back to ``cell N, row R`` as ruff reports them.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

#: a line of IPython syntax: magics (``%``, ``%%``), shell escapes (``!``), help (``?``)
_MAGIC_LINE = re.compile(r"^(?P<indent>\s*)(?:%|!|\?)")
_HELP_LINE = re.compile(r"^(?P<indent>\s*)[\w.]+\?{1,2}\s*$")
#: ``files = !ls`` and ``t = %timeit -o f()``
_MAGIC_ASSIGNMENT = re.compile(r"^(?P<head>\s*[\w.,\s\[\]()]+=\s*)(?:%|!)")


class NotebookError(ValueError):
    """A file with the .ipynb suffix that is not a notebook."""


@dataclass(frozen=True)
class Notebook:
    """The joined source and where each cell starts in it."""

    source: str
    #: 1-based cell numbers (every cell counts, markdown too), one per code cell
    cells: tuple[int, ...]
    #: the joined source's first row of each code cell, ascending
    first_rows: tuple[int, ...]
    #: the original notebook document
    document: dict

    def cell_lines(self, number: int) -> list[str]:
        """The lines of a code cell as the rules saw them (IPython syntax masked)."""
        index = self.cells.index(number)
        end = self.first_rows[index + 1] - 1 if index + 1 < len(self.cells) else None
        return self.source.splitlines()[self.first_rows[index] - 1 : end]

    def locate(self, row: int) -> tuple[int, int]:
        """(cell number, row within the cell) of a row of the joined source."""
        index = max(0, bisect_right(self.first_rows, row) - 1)
        return self.cells[index], row - self.first_rows[index] + 1


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def mask_line(line: str) -> str:
    """The line with IPython syntax replaced by Python of the same shape (rows stay aligned)."""
    assignment = _MAGIC_ASSIGNMENT.match(line)
    if assignment:
        return assignment.group("head") + "None"
    match = _MAGIC_LINE.match(line) or _HELP_LINE.match(line)
    if match:
        return match.group("indent") + "pass"
    return line


def _mask_cell(lines: list[str]) -> list[str]:
    if lines and lines[0].lstrip().startswith("%%"):
        # a cell magic (%%bash, %%writefile, %%time ...): the body is not Python, or not ours
        return ["pass" if index == 0 else "" for index, _ in enumerate(lines)]
    return [mask_line(line) for line in lines]


def parse_notebook(data: bytes) -> Notebook:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NotebookError(f"not a valid notebook (invalid JSON: {error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError("not a valid notebook (no list of cells)")
    code = [
        _cell_text(cell) if isinstance(cell, dict) and cell.get("cell_type") == "code" else None
        for cell in document["cells"]
    ]
    return join_cells(code, document)


def join_cells(cells: Sequence[str | None], document: dict) -> Notebook:
    """The code cells' texts (None for the other cells, which count in the numbering) joined into
    one program, in order, IPython syntax masked."""
    lines: list[str] = []
    numbers: list[int] = []
    first_rows: list[int] = []
    for number, text in enumerate(cells, start=1):
        if text is None:
            continue
        numbers.append(number)
        first_rows.append(len(lines) + 1)
        lines.extend(_mask_cell(text.splitlines()))
    return Notebook("\n".join(lines) + "\n" if lines else "", tuple(numbers), tuple(first_rows), document)
