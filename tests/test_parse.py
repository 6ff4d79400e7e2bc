"""Parsing without libcst's per-node validation gives the trees a stock parse gives."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import libcst as cst
import pytest

from mllint.construction import unchecked_node_construction
from mllint.runner import _bracket_depth, parse_source
from mllint.semantic.scan import _child_fields, _children_function, iter_children, walk

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DATA = Path(__file__).resolve().parent / "data"


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


def test_parses_change_no_class_of_libcst() -> None:
    """A class changed at every parse would lose Python's attribute caches after a thousand."""
    parse_source("x = 1\n")  # the constructors are installed once, at the first parse
    classes = (cst.Name, cst.Call, cst.Module, cst.FunctionDef, cst.CSTNode)
    versions = {node_class: dict(vars(node_class)) for node_class in classes}
    parse_source("def f(x):\n    return g(x)\n")
    with unchecked_node_construction():
        assert {node_class: dict(vars(node_class)) for node_class in classes} == versions
    assert {node_class: dict(vars(node_class)) for node_class in classes} == versions


def test_nodes_are_hashed_by_identity_in_c() -> None:
    """Tables keyed by node hash every node of a tree: a Python ``__hash__`` cost 2.5x the insertion."""
    tree = parse_source("x = f(x)\n")
    first, second = cst.Name("x"), cst.Name("x")
    table = {first: 1, second: 2, tree: 3}
    assert table[first] == 1 and table[second] == 2 and table[tree] == 3
    assert first != second and first.deep_equals(second)
    for node_class in (cst.Name, cst.Call, cst.Module, cst.CSTNode):
        assert node_class.__hash__ is object.__hash__


@pytest.mark.parametrize(
    "build",
    [
        lambda: cst.Name("x"),
        lambda: cst.Module(body=[]),
        lambda: cst.Call(cst.Name("f"), [cst.Arg(cst.Integer("1"))]),
        lambda: cst.FunctionDef(cst.Name("f"), cst.Parameters(), cst.IndentedBlock([cst.SimpleStatementLine([])])),
        lambda: cst.SimpleString(value='"s"', lpar=[cst.LeftParen()], rpar=[cst.RightParen()]),
    ],
    ids=["defaults", "module", "positional", "nested", "keywords"],
)
def test_unchecked_constructors_fill_fields_as_libcst_does(build: Callable[[], cst.CSTNode]) -> None:
    with unchecked_node_construction():
        unchecked = build()
    assert unchecked.deep_equals(build())


def test_text_outside_ascii_does_not_hide_nesting_from_the_depth_gate() -> None:
    nested = "x = " + "(" * 300 + "1" + ")" * 300 + "\n"
    assert _bracket_depth(nested) == 300
    assert _bracket_depth(f"s = '{'é' * 1000}'\n" + nested) == 300


def _children_by_every_field(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The children the walk must give: every node in a field that is not whitespace or punctuation."""
    found: list[cst.CSTNode] = []
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        values = value if isinstance(value, (list, tuple)) else [value]
        found.extend(item for item in values if isinstance(item, cst.CSTNode))
    return found


@pytest.mark.parametrize(
    "path", [*sorted(FIXTURES.rglob("*.py")), DATA / "recent_syntax.py"], ids=lambda path: path.name
)
def test_the_walk_reads_every_field_that_holds_nodes(path: Path) -> None:
    tree = parse_source(path.read_text(encoding="utf-8"))
    for node in walk(tree):
        assert iter_children(node) == _children_by_every_field(node), type(node).__name__


def test_a_default_made_by_a_factory_is_made_when_its_marker_is_passed() -> None:
    """Callers that build nodes from libcst's signatures (hypothesmith does) pass the marker itself."""
    parse_source("x = a[1:2]\n")
    marker = dataclasses._HAS_DEFAULT_FACTORY  # type: ignore[attr-defined]  # what libcst's signatures show
    assert inspect.signature(cst.Slice).parameters["first_colon"].default is marker
    built = cst.Slice(cst.Integer("1"), cst.Integer("2"), first_colon=marker)
    assert isinstance(built.first_colon, cst.Colon)
    assert built.deep_equals(cst.Slice(cst.Integer("1"), cst.Integer("2")))


@dataclasses.dataclass(frozen=True)
class _Annotated:
    """A node class whose annotations are strings (a module with postponed annotations)."""

    items: Sequence[cst.Name]
    single: cst.Name
    label: str


def test_fields_whose_annotations_are_not_understood_are_read_whole() -> None:
    first, second, single = cst.Name("a"), cst.Name("b"), cst.Name("c")
    children = _children_function(_Annotated)(_Annotated([first, second], single, "label"))
    assert children == [first, second, single]
