"""One walk over a module that collects everything the semantic layer needs.

Rules query these tables instead of walking the tree again: parents, calls, definitions,
imports and the assignments of every scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from mllint.semantic.names import NameTable

Scope = cst.FunctionDef | cst.Lambda | None


@dataclass(frozen=True)
class Binding:
    """One way a name gets a value: ``target = value`` (``path`` indexes into tuple unpacking)."""

    value: cst.BaseExpression
    path: tuple[int, ...] = ()
    #: "assign", "for" (an element of the iterable), "with" (the context manager's value)
    kind: str = "assign"
    node: cst.CSTNode | None = None


@dataclass
class ScopeTable:
    """Names assigned in one function (or the module, when ``function`` is None)."""

    function: cst.FunctionDef | None
    names: dict[str, list[Binding]] = field(default_factory=dict)
    #: ``self.x = ...`` in a method: attribute name -> bindings
    self_attributes: dict[str, list[Binding]] = field(default_factory=dict)
    returns: list[cst.BaseExpression] = field(default_factory=list)
    calls: list[cst.Call] = field(default_factory=list)
    #: ``global x`` / ``nonlocal x`` declarations
    outer_names: set[str] = field(default_factory=set)


def _targets(
    target: cst.BaseExpression, path: tuple[int, ...] = ()
) -> list[tuple[cst.BaseExpression, tuple[int, ...]]]:
    if isinstance(target, (cst.Tuple, cst.List)):
        found: list[tuple[cst.BaseExpression, tuple[int, ...]]] = []
        for index, element in enumerate(target.elements):
            found.extend(_targets(element.value, (*path, index)))
        return found
    return [(target, path)]


class ModuleScan(cst.CSTVisitor):
    """Collects the tables of :class:`mllint.context.ModuleContext` in a single traversal."""

    def __init__(self, names: NameTable) -> None:
        super().__init__()
        self.names = names
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        self.functions: list[cst.FunctionDef] = []
        self.classes: list[cst.ClassDef] = []
        self.calls: list[cst.Call] = []
        self.scopes: dict[cst.FunctionDef | None, ScopeTable] = {None: ScopeTable(None)}
        self._stack: list[cst.CSTNode] = []
        self._scope_stack: list[ScopeTable] = [self.scopes[None]]

    # -- bookkeeping -------------------------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.parents[node] = self._stack[-1]
        self._stack.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self._stack.pop()

    @property
    def _scope(self) -> ScopeTable:
        return self._scope_stack[-1]

    def _bind(self, target: cst.BaseExpression, binding: Binding) -> None:
        for element, path in _targets(target):
            bound = Binding(binding.value, binding.path + path, binding.kind, binding.node)
            if isinstance(element, cst.Name):
                self._scope.names.setdefault(element.value, []).append(bound)
            elif (
                isinstance(element, cst.Attribute)
                and isinstance(element.value, cst.Name)
                and element.value.value == "self"
            ):
                self._scope.self_attributes.setdefault(element.attr.value, []).append(bound)

    # -- definitions -------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        if len(self._scope_stack) == 1 and not self._in_class():
            self.names.add_definition(node.name.value)
        self.scopes[node] = ScopeTable(node)
        self._scope_stack.append(self.scopes[node])

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scope_stack.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)
        if len(self._scope_stack) == 1 and not self._in_class():
            self.names.add_definition(node.name.value)

    def _in_class(self) -> bool:
        return any(isinstance(node, cst.ClassDef) for node in self._stack[:-1])

    def visit_Import(self, node: cst.Import) -> None:
        self.names.add_import(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.names.add_import_from(node)

    def visit_Global(self, node: cst.Global) -> None:
        self._scope.outer_names.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self._scope.outer_names.update(item.name.value for item in node.names)

    # -- values ------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)
        self._scope.calls.append(node)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, Binding(node.value, node=node))

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, Binding(node.value, node=node))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target, Binding(node.value, kind="augassign", node=node))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target, Binding(node.value, node=node))

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target, Binding(node.iter, kind="for", node=node))

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind(node.asname.name, Binding(node.item, kind="with", node=node))

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            self._scope.returns.append(node.value)
