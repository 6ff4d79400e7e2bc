"""``--fix`` / ``--diff``: lint, apply the chosen fixes in memory, lint again, until nothing changes.

Every pass lints the whole selection with the fixed texts standing in for the files, so a fix
in ``models.py`` is seen by the check of ``train.py``; files are written (atomically) only at the
end, and only texts that parse.
"""

from __future__ import annotations

import difflib
import io
import tokenize
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mllint.diagnostics import TextEdit
from mllint.fixes import FixError, apply, apply_to_notebook, choose, write_atomically
from mllint.notebook import NotebookError, parse_notebook
from mllint.runner import RunResult, SourceError, parse_source

#: a fix that enables another settles in a couple of passes; a cycle must not spin forever
MAX_PASSES = 10


@dataclass
class FixOutcome:
    #: the last pass: what is left to report
    result: RunResult
    #: the new content of every file a fix changed
    changed: dict[Path, bytes] = field(default_factory=dict)
    fixed: Counter[Path] = field(default_factory=Counter)


def fix(lint: Callable[[dict[Path, bytes]], RunResult], unsafe: bool) -> FixOutcome:
    """Lint (``lint`` runs the selection with the given file contents) and fix to a fixed point."""
    changed: dict[Path, bytes] = {}
    fixed: Counter[Path] = Counter()
    for _ in range(MAX_PASSES):
        result = lint(changed)
        progress = False
        for path, diagnostics in _by_path(result).items():
            fixes = choose(diagnostics, unsafe)
            if not fixes:
                continue
            current = changed.get(path) or path.read_bytes()
            try:
                changed[path] = fixed_content(path, current, [edit for f in fixes for edit in f.edits])
            except (FixError, SourceError, NotebookError, ValueError):
                continue  # a fix that cannot be placed or does not parse is never applied
            fixed[path] += len(fixes)
            progress = True
        if not progress:
            break
    else:
        result = lint(changed)
    return FixOutcome(result, {path: data for path, data in changed.items() if data != path.read_bytes()}, fixed)


def _by_path(result: RunResult) -> dict[Path, list]:
    grouped: dict[Path, list] = {}
    for d in result.diagnostics:
        if d.fix is not None:
            grouped.setdefault(d.path, []).append(d)
    return grouped


def fixed_content(path: Path, data: bytes, edits: Sequence[TextEdit]) -> bytes:
    """The file's bytes with the edits applied, in its own encoding; raises when the result does not parse."""
    if path.suffix == ".ipynb":
        text = data.decode("utf-8-sig")
        fixed = apply_to_notebook(text, edits, parse_notebook(data))
        parse_source(parse_notebook(fixed.encode()).source)
        return fixed.encode("utf-8")
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    fixed = apply(data.decode(encoding), edits)  # ``utf-8-sig`` drops a BOM here and writes it back
    parse_source(fixed)
    return fixed.encode(encoding)


def write(outcome: FixOutcome) -> None:
    for path, data in outcome.changed.items():
        write_atomically(path, data)


def unified_diff(outcome: FixOutcome, display: Callable[[Path], str]) -> str:
    chunks = []
    for path, data in sorted(outcome.changed.items()):
        before = path.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
        after = data.decode("utf-8", "replace").splitlines(keepends=True)
        name = display(path)
        chunks.extend(difflib.unified_diff(before, after, fromfile=name, tofile=name))
    return "".join(chunks)
