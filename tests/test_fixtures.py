"""Every fixture file lints to exactly the findings its ``# expect: ML001`` markers announce."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mllint.config import Settings
from mllint.registry import all_rules
from mllint.runner import run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MARKER = re.compile(r"#\s*expect:\s*(?P<codes>ML\d{3}(?:\s*,\s*ML\d{3})*)")


def expected_findings(path: Path) -> set[tuple[str, int, str]]:
    expected = set()
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            for code in re.split(r"\s*,\s*", match.group("codes")):
                expected.add((path.name, row, code))
    return expected


def fixture_sets() -> list[Path]:
    """A rule's fixture file, or a folder linted as one project (cross-file fixtures)."""
    return sorted(path for path in FIXTURES.iterdir() if path.suffix == ".py" or path.is_dir())


@pytest.mark.parametrize("fixture", fixture_sets(), ids=lambda path: path.name)
def test_fixture(fixture: Path) -> None:
    files = sorted(fixture.rglob("*.py")) if fixture.is_dir() else [fixture]
    # the default rules and the fixture's own (``ml116_*`` enables ML116 when it is opt-in):
    # a fixture of one rule must not trip another
    own = fixture.name[:5].upper()
    rules = [rule for rule in all_rules() if rule.default_enabled or rule.code == own]
    settings = Settings(root=fixture if fixture.is_dir() else fixture.parent)
    result = run(files, rules, settings)
    assert not result.failures
    reported = {(d.path.name, d.start.row, d.code) for d in result.diagnostics}
    expected = set().union(*(expected_findings(path) for path in files))
    assert sorted(reported - expected) == [], "unexpected findings"
    assert sorted(expected - reported) == [], "missed findings"
