"""Per-function control-flow graphs (networkx DiGraphs) built from the libcst tree.

Nodes are simple statements and compound-statement headers (an ``if`` node stands for its test,
a ``for`` node for fetching the next element), plus the ``ENTRY`` and ``EXIT`` sentinels. Edges
follow if/elif/else, loops with their back edges and ``else`` clauses, break/continue,
try/except/else/finally (every statement of a ``try`` body may jump to each handler), with,
match, return and raise. Comprehensions and lambdas are opaque parts of their statement; nested
function and class definitions are single statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import libcst as cst
import networkx as nx

ENTRY = "ENTRY"
_CODE = cst.Module(body=[])
EXIT = "EXIT"

Node = cst.CSTNode | str
Loop = cst.For | cst.While


@dataclass
class _LoopFrame:
    header: Loop
    breaks: list[Node] = field(default_factory=list)


class ControlFlowGraph:
    def __init__(self, owner: cst.FunctionDef | cst.Module) -> None:
        self.owner = owner
        self.graph = nx.DiGraph()
        self.graph.add_nodes_from((ENTRY, EXIT))
        #: loop header -> the statements of its body (nested ones included), not its else clause
        self.loop_bodies: dict[Loop, set[Node]] = {}
        self._loops: list[_LoopFrame] = []
        exits = self._block(owner.body, [ENTRY]) if isinstance(owner, cst.Module) else self._suite(owner.body, [ENTRY])
        self._connect(exits, EXIT)

    # -- construction ------------------------------------------------------------------------
    def _connect(self, sources: Iterable[Node], target: Node) -> None:
        for source in sources:
            self.graph.add_edge(source, target)

    def _add(self, node: Node, preds: Iterable[Node]) -> None:
        self.graph.add_node(node)
        self._connect(preds, node)
        for frame in self._loops:
            self.loop_bodies[frame.header].add(node)

    def _suite(self, suite: cst.BaseSuite, preds: list[Node]) -> list[Node]:
        if isinstance(suite, cst.IndentedBlock):
            return self._block(suite.body, preds)
        return self._block([suite], preds) if isinstance(suite, cst.SimpleStatementSuite) else preds

    def _block(self, statements: Sequence[cst.CSTNode], preds: list[Node]) -> list[Node]:
        for statement in statements:
            if not preds:
                break  # unreachable code after return / raise / break / continue
            preds = self._statement(statement, preds)
        return preds

    def _statement(self, statement: cst.CSTNode, preds: list[Node]) -> list[Node]:
        if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in statement.body:
                preds = self._small(small, preds)
                if not preds:
                    break
            return preds
        handler = {
            cst.If: self._if,
            cst.For: self._loop,
            cst.While: self._loop,
            cst.Try: self._try,
            cst.TryStar: self._try,
            cst.With: self._with,
            cst.Match: self._match,
        }.get(type(statement))
        if handler is not None:
            return handler(statement, preds)  # type: ignore[operator]
        self._add(statement, preds)  # def, class: one statement
        return [statement]

    def _small(self, small: cst.BaseSmallStatement, preds: list[Node]) -> list[Node]:
        self._add(small, preds)
        if isinstance(small, (cst.Return, cst.Raise)):
            self.graph.add_edge(small, EXIT)
            return []
        if isinstance(small, cst.Break) and self._loops:
            self._loops[-1].breaks.append(small)
            return []
        if isinstance(small, cst.Continue) and self._loops:
            self.graph.add_edge(small, self._loops[-1].header)
            return []
        return [small]

    def _if(self, node: cst.If, preds: list[Node]) -> list[Node]:
        self._add(node, preds)
        exits = self._suite(node.body, [node])
        # through the adjacency, not ``graph.edges``: a cached edge view would make the graph a
        # reference cycle (see ModuleContext.release)
        for successor in self.graph.successors(node):
            self.graph.succ[node][successor]["branch"] = True
        if isinstance(node.orelse, cst.If):
            exits += self._if(node.orelse, [node])
        elif isinstance(node.orelse, cst.Else):
            exits += self._suite(node.orelse.body, [node])
        else:
            exits.append(node)
        return exits

    def _loop(self, node: Loop, preds: list[Node]) -> list[Node]:
        self._add(node, preds)
        self.loop_bodies[node] = set()
        frame = _LoopFrame(node)
        self._loops.append(frame)
        body_exits = self._suite(node.body, [node])
        self._loops.pop()
        self._connect(body_exits, node)  # the back edge
        exits = self._suite(node.orelse.body, [node]) if node.orelse is not None else [node]
        if isinstance(node, cst.While) and _is_true(node.test) and node.orelse is None:
            exits = []  # ``while True`` ends by break only
        return exits + frame.breaks

    def _try(self, node: cst.Try | cst.TryStar, preds: list[Node]) -> list[Node]:
        self._add(node, preds)
        body_start = len(self.graph)
        exits = self._suite(node.body, [node])
        raising = [node, *list(self.graph.nodes)[body_start:]]
        handler_exits: list[Node] = []
        for handler in node.handlers:
            self._add(handler, raising)
            handler_exits += self._suite(handler.body, [handler])
        if node.orelse is not None:
            exits = self._suite(node.orelse.body, exits)
        exits += handler_exits
        if node.finalbody is not None:
            exits = self._suite(node.finalbody.body, exits or [node])
        return exits

    def _with(self, node: cst.With, preds: list[Node]) -> list[Node]:
        self._add(node, preds)
        return self._suite(node.body, [node])

    def _match(self, node: cst.Match, preds: list[Node]) -> list[Node]:
        self._add(node, preds)
        exits: list[Node] = [node]
        for case in node.cases:
            self._add(case, [node])
            exits += self._suite(case.body, [case])
        return exits

    # -- queries -----------------------------------------------------------------------------
    def __contains__(self, node: object) -> bool:
        return node in self.graph

    def node_of(self, node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]) -> Node | None:
        """The graph node (statement or header) that evaluates ``node``."""
        current: cst.CSTNode | None = node
        while current is not None and current not in self.graph:
            current = parents.get(current)
        return current

    def conditions_of(
        self, node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]
    ) -> frozenset[tuple[str, bool]]:
        """The ``if`` branches a statement lies in: its branch decisions, for correlated paths."""
        found = set()
        child, parent = node, parents.get(node)
        while parent is not None and parent is not self.owner:
            if isinstance(parent, cst.If) and parent in self.graph and child is not parent.test:
                found.add((_CODE.code_for_node(parent.test), child is parent.body))
            child, parent = parent, parents.get(parent)
        return frozenset(found)

    def loops(self) -> list[Loop]:
        return list(self.loop_bodies)

    def has_path(
        self,
        source: Node,
        target: Node,
        avoiding: Iterable[Node] = (),
        within: set[Node] | None = None,
        correlated: bool = False,
        assume: frozenset[tuple[str, bool]] = frozenset(),
    ) -> bool:
        """A path of at least one edge from ``source`` to ``target`` that meets none of ``avoiding``
        (except at its ends), staying inside ``within`` when given. With ``correlated``, ``if``
        tests with the same code take the same branch along the path (``if accumulate:`` twice)."""
        blocked = set(avoiding) - {target}
        allowed = None if within is None else within | {source, target}
        seen: set[tuple[Node, frozenset[tuple[str, bool]]]] = set()
        frontier = [(s, self._decide(source, s, assume, correlated)) for s in self.graph.successors(source)]
        while frontier:
            node, decisions = frontier.pop()
            if decisions is None:
                continue
            if node == target:
                return True
            if (node, decisions) in seen or node in blocked or (allowed is not None and node not in allowed):
                continue
            seen.add((node, decisions))
            frontier.extend((s, self._decide(node, s, decisions, correlated)) for s in self.graph.successors(node))
        return False

    def cycle_through(
        self,
        node: Node,
        through: set[Node],
        avoiding: Iterable[Node] = (),
        within: set[Node] | None = None,
        correlated: bool = False,
    ) -> Node | None:
        """The first of ``through`` on a path from ``node`` back to itself (one loop iteration and
        more) meeting none of ``avoiding``; branch decisions stay consistent along the whole cycle."""
        blocked = set(avoiding) - {node}
        allowed = None if within is None else within | {node}
        State = tuple[Node, frozenset[tuple[str, bool]], Node | None]
        seen: set[State] = set()
        frontier: list[State] = [
            (s, self._decide(node, s, frozenset(), correlated), None) for s in self.graph.successors(node)
        ]  # type: ignore[misc]
        while frontier:
            current, decisions, met = frontier.pop()
            if decisions is None:
                continue
            if current == node:
                if met is not None:
                    return met
                continue
            if (
                (current, decisions, met) in seen
                or current in blocked
                or (allowed is not None and current not in allowed)
            ):
                continue
            seen.add((current, decisions, met))
            met = met if met is not None else (current if current in through else None)
            frontier.extend(
                (s, self._decide(current, s, decisions, correlated), met) for s in self.graph.successors(current)
            )
        return None

    def _decide(
        self, node: Node, successor: Node, decisions: frozenset[tuple[str, bool]], correlated: bool
    ) -> frozenset[tuple[str, bool]] | None:
        """The branch decisions after taking an edge; None when it contradicts an earlier one."""
        if not correlated or not isinstance(node, cst.If):
            return decisions
        test = _CODE.code_for_node(node.test)
        branch = bool(self.graph.succ[node][successor].get("branch"))
        if (test, not branch) in decisions:
            return None
        return decisions | {(test, branch)}

    def dominates(self, dominator: Node, node: Node, start: Node = ENTRY) -> bool:
        """Every path from ``start`` to ``node`` passes through ``dominator``."""
        if dominator == node:
            return True
        return not self.has_path(start, node, avoiding=[dominator]) if start != dominator else True


def _is_true(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Name) and test.value == "True") or (
        isinstance(test, cst.Integer) and test.value not in ("0",)
    )


def build_cfg(owner: cst.FunctionDef | cst.Module) -> ControlFlowGraph:
    return ControlFlowGraph(owner)
