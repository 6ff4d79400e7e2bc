"""The shortcuts that keep an editor's checks fast give what the long way gives: re-parsing an
edited module statement by statement (the same tree as a full parse, re-using the statements whose
text did not change), and walks sliced from the scan's pre-order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst
import pytest

from mllint.incremental import StatementParser, top_level_pieces
from mllint.runner import SourceError, build_context, parse_source
from mllint.semantic.scan import walk

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures").rglob("*.py"))

AWKWARD = {
    "comments everywhere": """\
        #!/usr/bin/env python
        # header comment

        import torch  # trailing


        # leads the decorated function
        @torch.no_grad()
        @staticmethod
        def evaluate(model):
            return model.eval()
            # indented trailing comment

        # module-level trailing comment
        a = 1; b = 2
        if a: b = 3
        class Empty: pass
        # footer
        """,
    "no trailing newline": "import torch\n\ndef f():\n    return 1",
    "form feed between functions": "def f():\n    return 1\n\x0c\ndef g():\n    return 2\n",
    "one statement over lines": 'x = (\n    1,\n    2,\n)\ny = """\ndef not_a_function():\n"""\n',
    "comments only": "# nothing\n# here\n",
    "empty": "",
}


def assert_same_as_full_parse(source: str, tree: cst.Module) -> None:
    full = cst.parse_module(source)
    assert tree.deep_equals(full)
    assert tree.code == full.code
    assert (tree.default_indent, tree.has_trailing_newline, tree.encoding) == (
        full.default_indent,
        full.has_trailing_newline,
        full.encoding,
    )


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.name)
def test_a_fixture_parses_to_the_tree_of_a_full_parse(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert_same_as_full_parse(source, StatementParser(parse_source).parse(source))


@pytest.mark.parametrize("name", AWKWARD)
def test_awkward_layouts_parse_to_the_tree_of_a_full_parse(name: str) -> None:
    source = textwrap.dedent(AWKWARD[name])
    parser = StatementParser(parse_source)
    assert_same_as_full_parse(source, parser.parse(source))
    assert_same_as_full_parse(source, parser.parse(source))  # the second time from kept pieces


def test_pieces_are_cut_where_top_level_statements_start() -> None:
    source = textwrap.dedent(AWKWARD["comments everywhere"])
    pieces = top_level_pieces(source)
    assert pieces is not None and "".join(pieces) == source
    assert [piece.splitlines()[0] for piece in pieces] == [
        "#!/usr/bin/env python",
        "@torch.no_grad()",
        "a = 1; b = 2",
        "if a: b = 3",
        "class Empty: pass",
    ]


def test_an_edit_re_parses_only_the_statement_it_changed() -> None:
    before = "import torch\n\n\ndef train(model):\n    model.train()\n\n\ndef test(model):\n    model.eval()\n"
    after = before.replace("model.train()", "model.train(True)")
    parser = StatementParser(parse_source)
    first = parser.parse(before)
    second = parser.parse(after)
    assert_same_as_full_parse(after, second)
    # a statement after blank lines is a new node holding them, its own parts are the kept ones
    assert second.body[0] is first.body[0] and second.body[2].body is first.body[2].body
    assert second.body[1].body is not first.body[1].body


def test_a_statement_repeated_in_the_module_is_a_node_of_its_own() -> None:
    source = "x = 1\nx = 1\n"
    parser = StatementParser(parse_source)
    parser.parse(source)
    tree = parser.parse(source)
    assert tree.body[0] is not tree.body[1]


@pytest.mark.parametrize(
    "source",
    [
        "def f():\n      return 1\n\ndef g():\n    return 2\n",  # each piece would print with its own indent
        "def f():\r\n    return 1\r\n",
    ],
    ids=["mixed indents", "CRLF"],
)
def test_layouts_a_piece_cannot_keep_are_parsed_whole(source: str) -> None:
    assert_same_as_full_parse(source, StatementParser(parse_source).parse(source))


def test_a_syntax_error_is_reported_where_the_whole_text_has_it() -> None:
    source = "import torch\n\n\ndef f(:\n    pass\n"
    with pytest.raises(SourceError) as error:
        StatementParser(parse_source).parse(source)
    assert error.value.row == 4


@pytest.mark.parametrize("path", FIXTURES[:12], ids=lambda path: path.name)
def test_a_contexts_walk_of_a_subtree_is_the_walk_of_that_subtree(path: Path) -> None:
    ctx = build_context(path, path.read_text(encoding="utf-8"), path.parent)
    assert [id(node) for node in ctx.walk()] == [id(node) for node in walk(ctx.tree)]
    for node in ctx.walk():
        if isinstance(node, (cst.FunctionDef, cst.For, cst.IndentedBlock, cst.Call)):
            assert [id(inner) for inner in ctx.walk(node)] == [id(inner) for inner in walk(node)]
