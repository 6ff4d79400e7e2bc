from __future__ import annotations

import os
from pathlib import Path

import pytest

from mllint.config import Settings
from mllint.discovery import discover_files, parse_gitignore


def _ignored(patterns: str, path: str, is_dir: bool = False) -> bool:
    verdict = False
    for pattern in parse_gitignore(patterns):
        if pattern.directory_only and not is_dir:
            continue
        if pattern.regex.match(path):
            verdict = not pattern.negated
    return verdict


@pytest.mark.parametrize(
    ("patterns", "path", "is_dir", "ignored"),
    [
        ("*.py", "a/b/c.py", False, True),
        ("/top.py", "top.py", False, True),
        ("/top.py", "sub/top.py", False, False),
        ("data/", "data", True, True),
        ("data/", "data", False, False),
        ("docs/*.py", "docs/conf.py", False, True),
        ("docs/*.py", "docs/sub/conf.py", False, False),
        ("**/gen/*.py", "a/b/gen/x.py", False, True),
        ("out/**", "out/a/b.py", False, True),
        ("*.py\n!keep.py", "keep.py", False, False),
        ("# comment\n\n", "x.py", False, False),
        ("scratch_[0-9].py", "scratch_1.py", False, True),
    ],
)
def test_gitignore_patterns(patterns: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert _ignored(patterns, path, is_dir) is ignored


def _found(root: Path, settings: Settings | None = None, *paths: Path) -> list[str]:
    settings = settings or Settings(root=root)
    return sorted(p.relative_to(root).as_posix() for p in discover_files(list(paths) or [root], settings))


def test_walk_skips_default_folders_virtualenvs_and_gitignored(tmp_path: Path) -> None:
    for name in [
        "train.py",
        "pkg/model.py",
        "build/gen.py",
        ".git/hook.py",
        "env/lib/x.py",
        "ignored/x.py",
        "notes.txt",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    assert _found(tmp_path) == ["pkg/model.py", "train.py"]
    assert "ignored/x.py" in _found(tmp_path, Settings(root=tmp_path, respect_gitignore=False))


def test_explicit_file_is_always_linted(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.py\n")
    target = tmp_path / "train.py"
    target.write_text("x = 1\n")
    assert _found(tmp_path, None, target) == ["train.py"]
    assert _found(tmp_path) == []


def test_exclude_and_extend_exclude(tmp_path: Path) -> None:
    for name in ["a.py", "legacy/b.py", "tests/c.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    assert _found(tmp_path, Settings(root=tmp_path, extend_exclude=("legacy",))) == ["a.py", "tests/c.py"]
    assert _found(tmp_path, Settings(root=tmp_path, extend_exclude=("tests/*.py",))) == ["a.py", "legacy/b.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_loop_terminates(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("x = 1\n")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    assert _found(tmp_path) == ["a/x.py"]


def test_force_exclude_applies_to_explicit_files(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    target = tmp_path / "build" / "gen.py"
    target.write_text("x = 1\n")
    assert _found(tmp_path, Settings(root=tmp_path), target) == ["build/gen.py"]
    assert _found(tmp_path, Settings(root=tmp_path, force_exclude=True), target) == []
