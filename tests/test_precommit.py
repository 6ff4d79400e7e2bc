"""The real pre-commit runs the hook of this repository on a buggy file, then on the fixed one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUGGY, CLEAN

REPOSITORY = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def try_repo(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPOSITORY), "mllint", "--all-files"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_hook_fails_on_a_bug_and_passes_once_fixed(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit")
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    git(work, "config", "user.email", "test@example.com")
    git(work, "config", "user.name", "test")
    (work / "train.py").write_text(BUGGY)
    git(work, "add", "train.py")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")}

    failed = try_repo(work, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ML001" in failed.stdout

    (work / "train.py").write_text(CLEAN)
    git(work, "add", "train.py")
    passed = try_repo(work, env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
