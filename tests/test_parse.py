"""Parsing without libcst's per-node validation gives the trees a stock parse gives."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from mllint.runner import parse_source, unchecked_node_construction

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.py")), ids=lambda path: path.name)
def test_the_tree_equals_a_stock_parse(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    tree = parse_source(source)
    assert tree.deep_equals(cst.parse_module(source))
    assert tree.code == source


def test_nodes_built_outside_a_parse_are_validated() -> None:
    parse_source("x = (1)\n")
    with pytest.raises(cst.CSTValidationError):
        cst.SimpleWhitespace("not whitespace")
    with pytest.raises(RuntimeError), unchecked_node_construction():
        cst.SimpleWhitespace("not whitespace")  # unchecked here
        raise RuntimeError
    with pytest.raises(cst.CSTValidationError):
        cst.SimpleWhitespace("not whitespace")
