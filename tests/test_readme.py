"""The README's rule table is the catalog's (``mllint rules --output-format markdown``)."""

from __future__ import annotations

import re
from pathlib import Path

from mllint.cli import rules_markdown
from mllint.registry import all_rules

README = Path(__file__).resolve().parent.parent / "README.md"


def section(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert match, f"README lacks the {name} markers"
    return match.group(1).strip()


def test_rule_table_matches_the_catalog() -> None:
    expected = rules_markdown(all_rules())
    assert section("rules-table") == expected, "update README.md with `mllint rules --output-format markdown`"


def test_readme_never_installs_the_unrelated_pypi_package() -> None:
    assert not re.search(r"pip install\s+(-U\s+)?mllint\b(?![-\w])", README.read_text(encoding="utf-8"))
