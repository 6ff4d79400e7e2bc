"""Notebooks are linted as one program in cell order; findings point at (cell, row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mllint.cli import main
from mllint.notebook import mask_line, parse_notebook


def notebook(*cells: tuple[str, str]) -> dict:
    return {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True), "outputs": []}
            if kind == "code"
            else {"cell_type": kind, "metadata": {}, "source": source}
            for kind, source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


DOUBLE_SOFTMAX = notebook(
    ("markdown", "# Training\nA double softmax hides in cell 4."),
    ("code", "%matplotlib inline\n!pip install torch\nimport torch\nimport torch.nn.functional as F"),
    ("code", ""),
    ("code", "criterion = torch.nn.CrossEntropyLoss()\nfiles = !ls\n"),
    (
        "code",
        "def step(model, x, y):\n"
        "    %time out = model(x)\n"
        "    probs = F.softmax(model(x), dim=1)\n"
        "    return criterion(probs, y)",
    ),
    ("code", "%%bash\necho this is not python\nfor i in 1 2; do echo $i; done"),
)


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("%matplotlib inline", "pass"),
        ("    !nvidia-smi", "    pass"),
        ("files = !ls -la", "files = None"),
        ("model?", "pass"),
        ("x = 1  # 100% sure", "x = 1  # 100% sure"),
    ],
)
def test_ipython_syntax_is_masked(line: str, masked: str) -> None:
    assert mask_line(line) == masked


def test_cells_are_joined_in_order_with_rows_kept() -> None:
    parsed = parse_notebook(json.dumps(DOUBLE_SOFTMAX).encode())
    assert parsed.cells == (2, 3, 4, 5, 6)
    assert parsed.locate(1) == (2, 1)
    assert parsed.locate(5) == (4, 1)  # cell 3 is empty
    assert parsed.locate(8) == (5, 2)


def test_finding_reported_in_its_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.ipynb").write_text(json.dumps(DOUBLE_SOFTMAX))
    assert main(["check", "--no-cache", "."]) == 1
    out = capsys.readouterr().out
    assert "train.ipynb:cell 5:4:" in out and "ML001" in out
    assert main(["check", "--no-cache", "--output-format", "json", "train.ipynb"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    assert report["cell"] == 5 and report["location"]["row"] == 4 and report["noqa_row"] == 4


def test_broken_notebook_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "list.ipynb").write_text("[]")
    assert main(["check", "--no-cache", "--output-format", "json", "."]) == 1
    reports = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["filename"]).name for r in reports) == ["broken.ipynb", "list.ipynb"]
    assert all(r["code"] == "ML000" and "not a valid notebook" in r["message"] for r in reports)
