"""The README's Neovim 0.7 setup, run in a real headless Neovim (skipped where nvim is absent)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("editors") / "nvim_diagnostics.lua"
BUGGY = REPOSITORY / "fixtures" / "ml001_double_softmax.py"


@pytest.mark.skipif(shutil.which("nvim") is None, reason="Neovim is not installed")
def test_neovim_receives_the_diagnostics_of_the_cli(tmp_path: Path) -> None:
    shutil.copy(BUGGY, tmp_path / "buggy.py")
    env = {**os.environ, "MLLINT_COMMAND": json.dumps([sys.executable, "-m", "mllint", "server"])}
    completed = subprocess.run(
        ["nvim", "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {SCRIPT}", "buggy.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    received = sorted(line.split(" ", 2)[:2] for line in completed.stdout.splitlines())
    assert received, completed.stdout + completed.stderr
    cli = subprocess.run(
        [sys.executable, "-m", "mllint", "check", "--no-cache", "--output-format", "json", "buggy.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    expected = sorted([f"{d['location']['row']}:{d['location']['column']}:", d["code"]] for d in json.loads(cli.stdout))
    assert received == expected
