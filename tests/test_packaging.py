"""The catalog in ``rules/`` ships inside a regular (non-editable) wheel as ``mllint.rules``."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mllint.registry import all_rules

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPOSITORY)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [built] = out.glob("*.whl")
    return built


def test_wheel_contains_every_rule_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not wheel.name.startswith("mllint-"), "the distribution name must not be mllint's"
    for rule in all_rules():
        module = rule.__module__.rsplit(".", 1)[-1]
        assert f"mllint/rules/{module}.py" in names
    assert not any(name.startswith("rules/") for name in names)


def test_installed_wheel_finds_the_catalog(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # the dependencies come from this environment; the package itself only from the wheel
    code = "import mllint, mllint.registry as r; print(mllint.__file__); print(len(r.all_rules()))"
    env = {**os.environ, "PYTHONPATH": str(target)}
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    location, count = completed.stdout.split()
    assert Path(location).is_relative_to(target)
    assert int(count) == len(all_rules())
