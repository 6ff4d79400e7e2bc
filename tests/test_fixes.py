"""Fixes: before / after files, idempotence on every fixture, notebooks, safe writes."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from mllint import fixes
from mllint.autofix import fixed_content
from mllint.cli import main
from mllint.diagnostics import Position, TextEdit
from mllint.runner import SourceError

FIXES = Path(__file__).parent / "data" / "fixes"
FIXTURES = Path(__file__).parent.parent / "fixtures"
CASES = sorted(FIXES.glob("*.py"))
#: cases whose fix is unsafe: ``--fix`` alone leaves them as they are
UNSAFE_ONLY = {
    "ml001_softmax_in_forward",
    "ml002_missing_zero_grad",
    "ml004_missing_eval",
    "ml102_functional_dropout",
    "ml106_loss_accumulated_with_graph",
    "ml109_train_loader_not_shuffled",
    "ml113_forward_called_directly",
    "ml117_torch_load_unpinned",
    "ml118_nll_on_raw_logits",
    "ml119_requires_grad_typo",
    "ml120_method_not_called",
}


def lint(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["check", "--no-cache", *argv])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_fix_turns_before_into_after(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / case.name
    shutil.copy(case, target)
    code, out = lint(capsys, str(target), "--fix", "--unsafe-fixes")
    assert target.read_text() == case.with_name(case.name + ".fixed").read_text()
    assert code == 0, out
    assert "fixed, 0 remaining" in out


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_safe_fixes_alone(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / case.name
    shutil.copy(case, target)
    code, _ = lint(capsys, str(target), "--fix")
    if case.stem in UNSAFE_ONLY:
        assert target.read_text() == case.read_text() and code == 1
    else:
        assert target.read_text() == case.with_name(case.name + ".fixed").read_text() and code == 0


def test_diff_prints_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "train.py"
    shutil.copy(FIXES / "ml003_step_order.py", target)
    code, out = lint(capsys, str(target), "--diff")
    assert code == 1
    assert out.startswith("--- ") and "+        scaler.unscale_(optimizer)" in out
    assert target.read_text() == (FIXES / "ml003_step_order.py").read_text()


def test_json_fix_field_has_ruffs_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "train.py"
    shutil.copy(FIXES / "ml003_step_order.py", target)
    _, out = lint(capsys, str(target), "--output-format", "json")
    fixed = [d["fix"] for d in json.loads(out) if d["fix"] is not None]
    assert len(fixed) == 3
    insertion = next(fix for fix in fixed if "unscale_" in fix["message"])
    assert insertion["applicability"] == "safe"
    assert insertion["edits"] == [
        {
            "content": "        scaler.unscale_(optimizer)\n",
            "location": {"row": 27, "column": 1},
            "end_location": {"row": 27, "column": 1},
        }
    ]


def test_fix_only_reports_the_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "train.py"
    shutil.copy(FIXES / "ml003_step_order.py", target)
    code, out = lint(capsys, str(target), "--fix-only")
    assert code == 0 and out == "Fixed 3 errors.\n"


def test_every_fixture_fixes_to_a_fixed_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, tree)
    before = {path: path.read_text() for path in tree.rglob("*.py")}
    lint(capsys, str(tree), "--fix", "--unsafe-fixes", "--exit-zero")
    changed = [path for path, text in before.items() if path.read_text() != text]
    assert changed, "the fixtures hold fixable bugs"
    for path in before:
        ast.parse(path.read_text())
    code, out = lint(capsys, str(tree), "--diff", "--unsafe-fixes")
    assert (code, out) == (0, "")


def test_crlf_and_bom_survive_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "train.py"
    text = (FIXES / "ml003_step_order.py").read_text()
    target.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    lint(capsys, str(target), "--fix")
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n")
    expected = (FIXES / "ml003_step_order.py.fixed").read_text().replace("\n", "\r\n")
    assert data[3:].decode() == expected


def test_a_fix_that_would_not_parse_is_refused() -> None:
    edit = TextEdit("(", Position(1, 1), Position(1, 1))
    with pytest.raises(SourceError):
        fixed_content(Path("x.py"), b"x = 1\n", [edit])


def test_interrupted_write_leaves_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "train.py"
    target.write_text("original\n")

    def interrupted(source: str, destination: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fixes.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fixes.write_atomically(target, b"fixed\n")
    assert target.read_text() == "original\n"
    assert [path.name for path in tmp_path.iterdir()] == ["train.py"]


def _cell(source: str, cell_type: str = "code", **extra: object) -> dict:
    cell: dict = {"cell_type": cell_type, "metadata": {}, "source": source.splitlines(keepends=True), **extra}
    if cell_type == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
    return cell


def test_fix_in_a_notebook_keeps_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = {"output_type": "stream", "name": "stdout", "text": ["epoch 1\n"]}
    document = {
        "cells": [
            _cell("# Training", "markdown"),
            _cell("%matplotlib inline\nimport torch\nfrom torch import nn"),
            _cell(""),
            _cell(
                "for x, y in loader:\n"
                "    optimizer.zero_grad()\n"
                "    nn.CrossEntropyLoss()(model(x), y).backward()\n"
                "    scheduler.step()\n"
                "    optimizer.step()",
                outputs=[output],
                execution_count=3,
            ),
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    target = tmp_path / "train.ipynb"
    target.write_text(json.dumps(document, indent=1) + "\n")
    code, out = lint(capsys, str(target), "--fix")
    assert code == 0, out
    fixed = json.loads(target.read_text())
    assert fixed["cells"][:3] == document["cells"][:3]
    assert fixed["metadata"] == document["metadata"]
    assert fixed["cells"][3]["outputs"] == [output] and fixed["cells"][3]["execution_count"] == 3
    assert "".join(fixed["cells"][3]["source"]) == (
        "for x, y in loader:\n"
        "    optimizer.zero_grad()\n"
        "    nn.CrossEntropyLoss()(model(x), y).backward()\n"
        "    optimizer.step()\n"
        "    scheduler.step()"
    )
    assert target.read_text().startswith('{\n "cells": [')  # the notebook's own indentation
