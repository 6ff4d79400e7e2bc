"""Property: any program hypothesmith can write is linted without a crash, with valid JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from mllint.config import Settings  # noqa: E402
from mllint.output import diagnostic_to_json  # noqa: E402
from mllint.registry import all_rules  # noqa: E402
from mllint.runner import run  # noqa: E402


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=hypothesmith.from_grammar())
def test_generated_programs_never_crash(tmp_path_factory: pytest.TempPathFactory, source: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "generated.py"
    path.write_text(source, encoding="utf-8")
    result = run([path], list(all_rules()), Settings(root=folder))
    assert result.failures == []
    json.dumps([diagnostic_to_json(d) for d in result.diagnostics])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=hypothesmith.from_node())
def test_generated_modules_never_crash(tmp_path_factory: pytest.TempPathFactory, source: str) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path = Path(folder) / "generated.py"
    path.write_text(source, encoding="utf-8")
    result = run([path], list(all_rules()), Settings(root=folder))
    assert result.failures == []
    assert all(d.code != "ML000" for d in result.diagnostics)  # valid code is never "invalid"
