"""No input breaks mllint: every odd file gets a diagnostic or a clear message, and the run goes on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import BUGGY

from mllint.cli import main


def lint_json(capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, list[dict], str]:
    code = main(["check", "--no-cache", "--output-format", "json", *paths])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def by_file(reports: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for report in reports:
        grouped.setdefault(Path(report["filename"]).name, []).append(report)
    return grouped


BAD_FILES: dict[str, bytes] = {
    "syntax.py": b"def broken(:\n    pass\n",
    "latin1.py": b"name = '\xe9t\xe9'\n",
    "nul.py": b"x = 1\x00\n",
    "deep_parens.py": b"x = " + b"(" * 1000 + b"1" + b")" * 1000 + b"\n",
    # valid Python (CPython's test_grammar has it) that libcst's grammar lacks
    "parser_gap.py": b"def f(loss):\n    (x): int\n    return loss\n",
}
GOOD_FILES: dict[str, bytes] = {
    "bom.py": b"\xef\xbb\xbfimport torch\nx = torch.zeros(1)\n",
    "crlf.py": b"import torch\r\nx = torch.zeros(1)\r\n",
    "mixed.py": b"import torch\r\nx = 1\ny = 2\r\n",
    "tabs.py": b"def f():\n\tif True:\n\t\treturn 1\n",
    "empty.py": b"",
    "cookie.py": b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n",
    "deep_operators.py": b"x = " + b"not " * 1000 + b"y\n" + b"y = " + b"+".join([b"1"] * 1000) + b"\n",
}


def test_bad_files_are_reported_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, data in {**BAD_FILES, **GOOD_FILES}.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "buggy.py").write_text(BUGGY)
    code, reports, err = lint_json(capsys, ".")
    found = by_file(reports)
    assert code == 1 and "Traceback" not in err
    for name in BAD_FILES:
        [report] = found[name]
        assert report["code"] == "ML000", name
    assert "syntax error" in found["syntax.py"][0]["message"]
    assert found["parser_gap.py"][0]["message"].startswith("not checked: libcst cannot parse this valid Python")
    assert found["syntax.py"][0]["location"]["row"] == 1
    assert "decode" in found["latin1.py"][0]["message"]
    assert "NUL" in found["nul.py"][0]["message"]
    for name in GOOD_FILES:
        assert name not in found, found.get(name)
    assert [r["code"] for r in found["buggy.py"]] == ["ML001"]


def test_crlf_positions_match_lf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lf.py").write_text(BUGGY)
    (tmp_path / "crlf.py").write_bytes(BUGGY.replace("\n", "\r\n").encode())
    _, reports, _ = lint_json(capsys, ".")
    rows = {Path(r["filename"]).name: (r["location"], r["end_location"]) for r in reports}
    assert rows["lf.py"] == rows["crlf.py"]


def test_huge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(34_000))
    (tmp_path / "huge.py").write_text(BUGGY + body)
    assert len((tmp_path / "huge.py").read_text().splitlines()) > 100_000
    code, reports, _ = lint_json(capsys, "huge.py")
    assert code == 1 and [r["code"] for r in reports] == ["ML001"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.py"
    secret.write_text("x = 1\n")
    secret.chmod(0)
    try:
        code, reports, _ = lint_json(capsys, ".")
    finally:
        secret.chmod(0o644)
    assert code == 1 and "cannot read" in reports[0]["message"]


def test_links_and_directories_named_like_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.py").mkdir()
    (tmp_path / "x.py" / "inner.py").write_text(BUGGY)
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    os.symlink(tmp_path, tmp_path / "loop")
    code, reports, err = lint_json(capsys, ".")
    found = by_file(reports)
    assert "Traceback" not in err
    assert [r["code"] for r in found["inner.py"]] == ["ML001"]
    assert "no such file" in found["dangling.py"][0]["message"]
    code, reports, _ = lint_json(capsys, "x.py")  # a folder named like a file is walked
    assert code == 1
    assert [r["code"] for r in reports] == ["ML001"]


def test_pyproject_that_is_not_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.mllint\n\xff")
    (tmp_path / "a.py").write_text("x = 1\n")
    assert main(["check", "--no-cache", "."]) == 2
    err = capsys.readouterr().err
    assert "pyproject.toml" in err and "TOML" in err and "Traceback" not in err


def test_a_failing_rule_is_reported_and_the_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mllint import cli
    from mllint.rule import Rule

    class Exploding(Rule):
        """## What it does\nRaises.\n## Why is this bad?\n-\n## Example\n-\n## Use instead\n-"""

        code = "ML999"
        name = "exploding"
        summary = "raises on every file"

        def check(self, ctx):  # type: ignore[no-untyped-def]
            raise ValueError("boom")

    real = cli.selected_rules
    monkeypatch.setattr(cli, "selected_rules", lambda settings: [Exploding, *real(settings)])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "buggy.py").write_text(BUGGY)
    code = main(["check", "--no-cache", "."])
    captured = capsys.readouterr()
    assert code == 2  # the run was incomplete
    assert "ML999" in captured.out and "buggy.py" in captured.out and "ValueError: boom" in captured.out
    assert "ML001" in captured.out  # the other rules still ran on the file
    assert "Traceback" not in captured.out + captured.err
