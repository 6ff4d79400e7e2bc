"""The persistent cache: warm runs reuse findings, and a change re-checks what depends on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mllint.cli import main
from mllint.semantic.imports import imported_names

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_imported_names() -> None:
    source = "import os.path, numpy as np\nfrom .a import (x,\n  y as z)\nfrom .. import b  # comment\n"
    assert imported_names(source, "p.q.m", False) == {"os.path", "numpy", "p.q.a", "p.q.a.x", "p.q.a.y", "p", "p.b"}


def test_imported_names_where_import_is_also_a_word() -> None:
    source = (
        "import importlib  # import me\n"
        'x = "import nothing"\n'
        "    from .importer import (load,\n"
        "        save)  # an import comment\n"
        "if x: import reimport\n"
        "from . import sibling"
    )
    assert imported_names(source, "p.m", False) == {
        "importlib",
        "p.importer",
        "p.importer.load",
        "p.importer.save",
        "p",
        "p.sibling",
    }


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> list[tuple[str, int, str]]:
    main(["check", "--output-format", "json", *args])
    return sorted(
        (Path(r["filename"]).name, r["location"]["row"], r["code"]) for r in json.loads(capsys.readouterr().out)
    )


def test_cross_file_change_is_rechecked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(FIXTURES / "ml001_cross_file", tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    cold = lint(capsys, "--no-cache", ".")
    assert ("train.py", 13, "ML001") in cold
    assert lint(capsys, ".") == cold  # fills the cache
    assert list((tmp_path / "project" / ".mllint_cache").glob("*.json"))
    assert lint(capsys, ".") == cold  # from the cache

    models = tmp_path / "project" / "pkg" / "models.py"
    models.write_text(models.read_text().replace("return F.softmax(self.body(x), dim=-1)", "return self.body(x)"))
    assert ("train.py", 13, "ML001") not in lint(capsys, ".")  # train.py was re-checked, unedited


def test_corrupt_cache_entries_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(FIXTURES / "ml001_cross_file", tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    cold = lint(capsys, ".")
    for entry in (tmp_path / "project" / ".mllint_cache").glob("*.json"):
        entry.write_text("{not json")
    assert lint(capsys, ".") == cold


def test_cache_dir_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "ml001_cross_file", tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    cold = lint(capsys, "--cache-dir", str(tmp_path / "elsewhere"), ".")
    assert list((tmp_path / "elsewhere").glob("*.json"))
    assert not (tmp_path / "project" / ".mllint_cache").exists()
    assert lint(capsys, "--cache-dir", str(tmp_path / "elsewhere"), ".") == cold
