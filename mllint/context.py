"""Everything a rule may ask about the module it checks."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from mllint.incremental import python_statements
from mllint.semantic.names import NameTable
from mllint.semantic.scan import Binding, ModuleScan, ScopeTable, is_kind, iter_children, walk

if TYPE_CHECKING:
    from mllint.semantic.cfg import ControlFlowGraph
    from mllint.semantic.project import ProjectIndex

NodeT = TypeVar("NodeT", bound=cst.CSTNode)


class ModuleContext:
    """One parsed module with its semantic tables; created by the engine, read by rules."""

    def __init__(
        self,
        path: Path,
        source: str,
        tree: cst.Module,
        module_name: str,
        is_package: bool = False,
    ) -> None:
        self.path = path
        self.source = source
        self.tree = tree
        self.module_name = module_name
        self.names = NameTable(module_name, is_package)
        scan = ModuleScan(self.names)
        scan.scan(tree)
        self.parents = scan.parents
        self._preorder = scan.preorder
        self.functions = scan.functions
        self.classes = scan.classes
        self.calls = scan.calls
        self.tries = scan.tries
        self.scopes: dict[cst.FunctionDef | None, ScopeTable] = scan.scopes
        self.project: ProjectIndex | None = None
        self._cfgs: dict[cst.FunctionDef, ControlFlowGraph] = {}
        #: answers of semantic queries about this module that rules share (keyed by the query and
        #: its arguments); the project index clears them when what they depend on changes
        self.memo: dict[tuple[object, ...], object] = {}
        self._positions_by_statement: dict[cst.CSTNode, dict[cst.CSTNode, CodeRange]] = {}

    # -- tree navigation ---------------------------------------------------------------------
    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        parent = self.parents.get(node)
        while parent is not None:
            yield parent
            parent = self.parents.get(parent)

    def enclosing(self, node: cst.CSTNode, kind: type[NodeT] | tuple[type[NodeT], ...]) -> NodeT | None:
        for ancestor in self.ancestors(node):
            if is_kind(ancestor.__class__, kind):
                return ancestor  # type: ignore[return-value]
        return None

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        return self.enclosing(node, cst.FunctionDef)

    def enclosing_class(self, node: cst.CSTNode) -> cst.ClassDef | None:
        """The class whose method contains ``node`` (directly, not through a nested class)."""
        function = self.enclosing_function(node)
        while function is not None:
            parent = self.enclosing(function, (cst.FunctionDef, cst.ClassDef))
            if isinstance(parent, cst.ClassDef):
                return parent
            function = parent
        return None

    def walk(self, node: cst.CSTNode | None = None) -> Iterator[cst.CSTNode]:
        """Every node below ``node`` (default: the module), itself included, in source order,
        skipping whitespace and punctuation: a slice of the scan's pre-order, not a new walk."""
        if node is None:
            return iter(self._preorder)
        start = self._order.get(node)
        if start is None:  # not a node of this module's tree
            return walk(node)
        return iter(self._preorder[start : self._subtree_end(node)])

    def _subtree_end(self, node: cst.CSTNode) -> int:
        """The pre-order rank just past ``node``'s subtree: that of the next node not below it."""
        current = node
        while (parent := self.parents.get(current)) is not None:
            siblings = iter_children(parent)
            index = next(index for index, sibling in enumerate(siblings) if sibling is current)
            if index + 1 < len(siblings):
                return self._order[siblings[index + 1]]
            current = parent
        return len(self._preorder)

    @cached_property
    def _order(self) -> dict[cst.CSTNode, int]:
        return {node: index for index, node in enumerate(self._preorder)}

    def order(self, node: cst.CSTNode) -> int:
        """The node's rank in source order (pre-order): compares "before" and "after"."""
        return self._order.get(node, -1)

    def reaching_binding(self, name: cst.Name) -> Binding | None:
        """The last assignment of ``name`` in its scope before the use (straight-line order)."""
        table = self.scope_of(name)
        bindings = table.names.get(name.value, [])
        use = self.order(name)
        enclosing = {name, *self.ancestors(name)}
        # ``X = f(X)``: the ``X`` inside the value still reads the previous binding
        before = [b for b in bindings if b.node is not None and self.order(b.node) < use and b.value not in enclosing]
        return max(before, key=lambda b: self.order(b.node), default=None)  # type: ignore[arg-type]

    def statement_line(self, node: cst.CSTNode) -> cst.SimpleStatementLine | cst.BaseCompoundStatement | None:
        """The statement, as it stands in its block, that contains ``node`` (``a; b`` is one line)."""
        for candidate in (node, *self.ancestors(node)):
            if isinstance(candidate, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return candidate
        return None

    def statement(self, node: cst.CSTNode) -> cst.BaseStatement | cst.BaseSmallStatement | None:
        """The innermost statement that contains ``node``."""
        if isinstance(node, (cst.BaseSmallStatement, cst.BaseCompoundStatement)):
            return node
        return self.enclosing(node, (cst.BaseSmallStatement, cst.BaseCompoundStatement))

    # -- names -------------------------------------------------------------------------------
    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """What an imported or module-level name (or attribute chain on one) refers to."""
        return self.names.qualname(expr)

    def scope_of(self, node: cst.CSTNode) -> ScopeTable:
        return self.scopes[self.enclosing_function(node)]

    def code(self, node: cst.CSTNode) -> str:
        return self.tree.code_for_node(node)

    # -- positions ---------------------------------------------------------------------------
    @cached_property
    def _positions(self) -> dict[cst.CSTNode, CodeRange]:
        # computed only for modules that report something: it costs a second pass over the tree
        wrapper = MetadataWrapper(self.tree, unsafe_skip_copy=True)
        return dict(wrapper.resolve(PositionProvider))

    @cached_property
    def _statement_lines(self) -> dict[cst.CSTNode, int] | None:
        """The line of each top-level statement, from CPython's parser (a fraction of the cost of
        libcst's position pass); None when its statements do not line up with libcst's."""
        body = python_statements(self.source)
        if body is None:
            return None
        lines: dict[cst.CSTNode, int] = {}
        index = 0
        for statement in self.tree.body:
            if index >= len(body):
                return None
            lines[statement] = body[index].lineno
            # ``a; b`` is one libcst statement line and two ast statements
            index += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
        return lines if index == len(body) else None

    def _statement_positions(self, statement: cst.CSTNode) -> dict[cst.CSTNode, CodeRange]:
        """Positions of one top-level statement's nodes: its own position pass, shifted to its line."""
        if statement not in self._positions_by_statement:
            alone = self.tree.with_changes(body=[statement], header=(), footer=())
            local = MetadataWrapper(alone, unsafe_skip_copy=True).resolve(PositionProvider)
            shift = self._statement_lines[statement] - local[statement].start.line  # type: ignore[index]
            self._positions_by_statement[statement] = {
                node: CodeRange((span.start.line + shift, span.start.column), (span.end.line + shift, span.end.column))
                for node, span in local.items()
                if node is not alone
            }
        return self._positions_by_statement[statement]

    def range(self, node: cst.CSTNode) -> CodeRange:
        """Where a node is. A module with few findings gets the positions of the statements that
        hold them, not of the whole tree: a long file edited in an editor reports quickly."""
        if "_positions" not in self.__dict__ and self._statement_lines is not None:
            top = node
            for ancestor in self.ancestors(node):
                if isinstance(ancestor, cst.Module):
                    break
                top = ancestor
            if top in self._statement_lines:
                return self._statement_positions(top)[node]
        return self._positions[node]

    # -- semantic layer ----------------------------------------------------------------------
    def cfg(self, function: cst.FunctionDef | None = None) -> ControlFlowGraph:
        """The control-flow graph of a function (of the module body when ``function`` is None)."""
        from mllint.semantic.cfg import build_cfg

        key = function if function is not None else self.tree
        if key not in self._cfgs:
            self._cfgs[key] = build_cfg(key)  # type: ignore[index]
        return self._cfgs[key]  # type: ignore[index]

    def release(self) -> None:
        """Drop what analysing this module built, when the module itself is dropped: a networkx
        graph becomes a reference cycle once it caches an edge view, and a control-flow graph in a
        cycle would keep the tree alive until the cyclic collector runs (it is off during runs)."""
        for cfg in self._cfgs.values():
            cfg.graph.clear()
        self._cfgs.clear()
        self.memo.clear()
