"""One walk over a module that collects everything the semantic layer needs.

Rules query these tables instead of walking the tree again: parents, calls, definitions,
imports and the assignments of every scope.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ForwardRef, Literal, Union, get_args, get_origin

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


#: fields that hold only whitespace, comments and punctuation
_TRIVIA_FIELDS = {
    "colon",
    "comma",
    "dot",
    "equal",
    "first_colon",
    "second_colon",
    "footer",
    "header",
    "leading_lines",
    "leading_whitespace",
    "lines_after_decorators",
    "lbrace",
    "lbracket",
    "rbrace",
    "rbracket",
    "lpar",
    "rpar",
    "semicolon",
    "newline",
    "empty_lines",
    "trailing_whitespace",
    "operator",
    "asynchronous",
    "relative",
    "posonly_ind",
    "separator",
    "comment",
    "trailing_comma",
    "whitespace",
}
#: source order where it differs from the order of the dataclass fields
_SOURCE_ORDER = {
    cst.FunctionDef: ("decorators", "name", "params", "returns", "body"),
    cst.ClassDef: ("decorators", "name", "bases", "keywords", "body"),
    cst.IfExp: ("body", "test", "orelse"),
}


def _child_fields(kind: type) -> tuple[str, ...]:
    names = [
        item.name
        for item in dataclasses.fields(kind)
        if item.name not in _TRIVIA_FIELDS and not item.name.startswith("whitespace")
    ]
    order = _SOURCE_ORDER.get(kind, ())
    return (*[name for name in order if name in names], *[name for name in names if name not in order])


def iter_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The meaningful children of a node in source order: no whitespace, comments or punctuation."""
    children = _CHILDREN.get(node.__class__)
    if children is None:
        children = _CHILDREN[node.__class__] = _children_function(node.__class__)
    return children(node)


#: per node class, a function that lists its children (see :func:`_children_function`)
_CHILDREN: dict[type, Callable[[Any], list[cst.CSTNode]]] = {}


def _children_function(kind: type) -> Callable[[Any], list[cst.CSTNode]]:
    """A function for one node class that reads only the fields that may hold nodes, as their
    annotations tell, and tests a value's type only where the annotation allows something else
    (``None``, a sentinel, a string): the whole walk goes through it, and a generic loop over
    every field of every node (strings, flags, punctuation) cost a fifth of it."""
    annotations = {item.name: item.type for item in dataclasses.fields(kind)}
    lines = ["def children(node):", "    found = []"]
    for name in _child_fields(kind):
        lines += _field_code(name, annotations[name])
    namespace: dict[str, Any] = {"_is_node": _is_node}
    exec("\n".join([*lines, "    return found"]), namespace)  # built from the class's field names alone
    return namespace["children"]  # type: ignore[no-any-return]


def _field_code(name: str, annotation: object) -> list[str]:
    """The lines of a children function that add the nodes of one field."""
    if _only_nodes(annotation):
        return [f"    found.append(node.{name})"]
    if get_origin(annotation) is Sequence and all(_only_nodes(item) for item in get_args(annotation)):
        return [f"    found.extend(node.{name})"]
    arguments = get_args(annotation) if get_origin(annotation) in _UNIONS else ()
    if type(None) in arguments and all(_only_nodes(a) for a in arguments if a is not type(None)):
        return [f"    value = node.{name}", "    if value is not None:", "        found.append(value)"]
    items = _sequence_items(annotation)
    if items is None and not _may_hold_node(annotation):
        return []
    lines = [f"    value = node.{name}", "    kind = value.__class__"]
    if items is not None:
        extend = "value" if all(_only_nodes(item) for item in items) else "[i for i in value if _is_node(type(i))]"
        lines += ["    if kind is list or kind is tuple:", f"        found.extend({extend})"]
        lines.append("    elif _is_node(kind):")
    else:
        lines.append("    if _is_node(kind):")
    return [*lines, "        found.append(value)"]


_UNIONS = (Union, types.UnionType)


def _may_hold_node(annotation: object) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, cst.CSTNode)
    if get_origin(annotation) is Literal:
        return False
    arguments = get_args(annotation)
    # a forward reference or an annotation not understood: read the field
    return not arguments or any(_may_hold_node(argument) for argument in arguments)


def _only_nodes(annotation: object) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, cst.CSTNode)
    return get_origin(annotation) in _UNIONS and all(_only_nodes(argument) for argument in get_args(annotation))


def _sequence_items(annotation: object) -> tuple[object, ...] | None:
    """The annotations of the items when the field may hold a sequence; None when it may not."""
    if isinstance(annotation, (str, ForwardRef)):
        return (annotation,)  # not understood: read as a sequence of anything, or a node
    origin = get_origin(annotation)
    if origin is Sequence:
        return get_args(annotation)
    if origin in _UNIONS:
        items = [item for argument in get_args(annotation) for item in _sequence_items(argument) or ()]
        return tuple(items) or None
    return None


def is_kind(node_class: type, kind: type | tuple[type, ...]) -> bool:
    """``issubclass``, memoized. ``isinstance`` against libcst's classes (abstract-based) runs a
    Python-level check whenever the node's type is not the class itself: code that tests every
    node, or every ancestor, tests node kinds by class or through this."""
    if node_class is kind:
        return True
    known = _KINDS.get((node_class, kind))
    if known is None:
        known = _KINDS[node_class, kind] = issubclass(node_class, kind)
    return known


_KINDS: dict[tuple[type, object], bool] = {}


def _is_node(kind: type) -> bool:
    return is_kind(kind, cst.CSTNode)


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every meaningful node below ``node`` (itself included), in source order, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(iter_children(current)))


def _targets(
    target: cst.BaseExpression, path: tuple[int, ...] = ()
) -> list[tuple[cst.BaseExpression, tuple[int, ...]]]:
    if target.__class__ is cst.Tuple or target.__class__ is cst.List:
        found: list[tuple[cst.BaseExpression, tuple[int, ...]]] = []
        for index, element in enumerate(target.elements):
            found.extend(_targets(element.value, (*path, index)))
        return found
    return [(target, path)]


class _Leave:
    """Marks, on the walk's stack, the end of a definition's subtree."""

    __slots__ = ("node",)

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node


class ModuleScan:
    """Collects the tables of :class:`mllint.context.ModuleContext` in a single traversal.

    The walk is iterative and skips whitespace and punctuation: several times cheaper than
    libcst's visitor protocol, and no recursion limit on deeply nested code.
    """

    def __init__(self, names: NameTable) -> None:
        self.names = names
        self.parents: dict[cst.CSTNode, cst.CSTNode] = {}
        #: every meaningful node in source order (pre-order), as :func:`walk` yields them
        self.preorder: list[cst.CSTNode] = []
        self.functions: list[cst.FunctionDef] = []
        self.classes: list[cst.ClassDef] = []
        self.calls: list[cst.Call] = []
        self.tries: list[cst.Try | cst.TryStar] = []
        self.scopes: dict[cst.FunctionDef | None, ScopeTable] = {None: ScopeTable(None)}
        self._scope_stack: list[ScopeTable] = [self.scopes[None]]
        self._class_depth = 0

    def scan(self, tree: cst.Module) -> None:
        parents = self.parents
        # a local table: bound methods kept on the scan itself would make it a reference cycle
        # that holds every node of the tree until the cyclic garbage collector runs
        handlers: dict[type[cst.CSTNode], Callable[[Any], None]] = {
            cst.FunctionDef: self.visit_FunctionDef,
            cst.ClassDef: self.visit_ClassDef,
            cst.Import: self.names.add_import,
            cst.ImportFrom: self.names.add_import_from,
            cst.Global: self.visit_Global,
            cst.Nonlocal: self.visit_Global,
            cst.Call: self.visit_Call,
            cst.Assign: self.visit_Assign,
            cst.AnnAssign: self.visit_AnnAssign,
            cst.AugAssign: self.visit_AugAssign,
            cst.NamedExpr: self.visit_NamedExpr,
            cst.For: self.visit_For,
            cst.WithItem: self.visit_WithItem,
            cst.Return: self.visit_Return,
            cst.Try: self.tries.append,
            cst.TryStar: self.tries.append,
        }
        visit = self.preorder.append
        children_of = _CHILDREN
        stack: list[cst.CSTNode | _Leave] = [tree]
        while stack:
            node = stack.pop()
            kind = node.__class__
            if kind is _Leave:
                self._leave(node.node)  # type: ignore[union-attr]
                continue
            visit(node)
            handler = handlers.get(kind)
            if handler is not None:
                handler(node)
                # by class (see :func:`is_kind`)
                if kind is cst.FunctionDef or kind is cst.ClassDef:
                    stack.append(_Leave(node))
            children_function = children_of.get(kind)
            children = children_function(node) if children_function is not None else iter_children(node)
            for child in children:
                parents[child] = node
            stack.extend(reversed(children))

    def _leave(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.FunctionDef):
            self._scope_stack.pop()
        else:
            self._class_depth -= 1

    @property
    def _scope(self) -> ScopeTable:
        return self._scope_stack[-1]

    def _bind(self, target: cst.BaseExpression, binding: Binding) -> None:
        for element, path in _targets(target):
            bound = Binding(binding.value, binding.path + path, binding.kind, binding.node)
            # node kinds by class (see :func:`is_kind`)
            if element.__class__ is cst.Name:
                self._scope.names.setdefault(element.value, []).append(bound)  # type: ignore[attr-defined]
            elif (
                element.__class__ is cst.Attribute
                and element.value.__class__ is cst.Name  # type: ignore[attr-defined]
                and element.value.value == "self"  # type: ignore[attr-defined]
            ):
                self._scope.self_attributes.setdefault(element.attr.value, []).append(bound)  # type: ignore[attr-defined]

    # -- definitions -------------------------------------------------------------------------
    def _at_top_level(self) -> bool:
        return len(self._scope_stack) == 1 and self._class_depth == 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        if self._at_top_level():
            self.names.add_definition(node.name.value)
        self.scopes[node] = ScopeTable(node)
        self._scope_stack.append(self.scopes[node])

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)
        if self._at_top_level():
            self.names.add_definition(node.name.value)
        self._class_depth += 1

    def visit_Global(self, node: cst.Global | cst.Nonlocal) -> None:
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
