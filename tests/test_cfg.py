"""Control-flow graphs from real libcst parses."""

from __future__ import annotations

import textwrap

import libcst as cst

from mllint.semantic.cfg import ENTRY, EXIT, ControlFlowGraph
from mllint.semantic.scan import walk


def graph_of(source: str) -> tuple[ControlFlowGraph, dict[str, cst.CSTNode]]:
    """The CFG of the first function, and its statements by their code (``x = 1`` -> node)."""
    module = cst.parse_module(textwrap.dedent(source))
    function = next(node for node in walk(module) if isinstance(node, cst.FunctionDef))
    cfg = ControlFlowGraph(function)
    names = {}
    for node in cfg.graph:
        if isinstance(node, cst.BaseSmallStatement):
            names[module.code_for_node(node).strip().rstrip(";")] = node
        elif isinstance(node, (cst.If, cst.For, cst.While, cst.Try)):
            names[type(node).__name__.lower()] = node
    return cfg, names


def test_if_else_branches_join() -> None:
    cfg, n = graph_of(
        """
        def f(x):
            a = 1
            if x:
                b = 2
            else:
                c = 3
            d = 4
        """
    )
    assert cfg.has_path(n["a = 1"], n["d = 4"], avoiding=[n["b = 2"]])
    assert not cfg.has_path(n["b = 2"], n["c = 3"])
    assert cfg.dominates(n["a = 1"], n["d = 4"])
    assert not cfg.dominates(n["b = 2"], n["d = 4"])


def test_loop_back_edge_break_continue_and_else() -> None:
    cfg, n = graph_of(
        """
        def f(items):
            for item in items:
                if item:
                    continue
                work = 1
                if item > 2:
                    break
                more = 2
            else:
                finished = 3
            after = 4
        """
    )
    loop = n["for"]
    assert cfg.has_path(n["more = 2"], n["work = 1"])  # around the back edge
    assert cfg.has_path(n["continue"], loop)
    assert not cfg.has_path(n["break"], n["finished = 3"])
    assert cfg.has_path(n["break"], n["after = 4"])
    assert n["work = 1"] in cfg.loop_bodies[loop] and n["finished = 3"] not in cfg.loop_bodies[loop]


def test_return_and_while_true() -> None:
    cfg, n = graph_of(
        """
        def f():
            while True:
                x = 1
                if x:
                    return x
            unreachable = 2
        """
    )
    assert cfg.has_path(n["return x"], EXIT)
    assert "unreachable = 2" not in n
    assert cfg.has_path(ENTRY, n["x = 1"])


def test_try_except_finally() -> None:
    cfg, n = graph_of(
        """
        def f():
            try:
                a = 1
                b = 2
            except ValueError:
                c = 3
            else:
                d = 4
            finally:
                e = 5
        """
    )
    assert cfg.has_path(n["b = 2"], n["c = 3"])
    assert cfg.has_path(n["a = 1"], n["c = 3"], avoiding=[n["b = 2"]])
    assert cfg.has_path(n["c = 3"], n["e = 5"], avoiding=[n["d = 4"]])
    assert cfg.dominates(n["e = 5"], EXIT)
