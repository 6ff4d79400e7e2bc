"""The project index: modules, classes, functions and the call graph across files.

Built from every module of a run before any rule checks one, and updated a module at a time
(the language server replaces the module of an edited buffer). Anything outside the project is
known by its qualified name only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import libcst as cst
import networkx as nx

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.values import ValueInference


@dataclass
class FunctionInfo:
    qualname: str
    node: cst.FunctionDef
    ctx: ModuleContext
    class_qualname: str | None = None

    @property
    def params(self) -> list[cst.Param]:
        params = self.node.params
        return [*params.posonly_params, *params.params, *params.kwonly_params]


@dataclass
class ClassInfo:
    qualname: str
    node: cst.ClassDef
    ctx: ModuleContext
    bases: list[str] = field(default_factory=list)
    methods: dict[str, FunctionInfo] = field(default_factory=dict)


InfoT = TypeVar("InfoT", FunctionInfo, ClassInfo)


class ProjectIndex:
    def __init__(self) -> None:
        self.modules: dict[str, ModuleContext] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self._function_by_node: dict[cst.FunctionDef, FunctionInfo] = {}
        self._call_graph: nx.MultiDiGraph | None = None
        self._suffix_matches: dict[tuple[int, str], list[str]] = {}
        self.values = ValueInference(self)

    # -- building ----------------------------------------------------------------------------
    def add(self, ctx: ModuleContext) -> None:
        if ctx.module_name in self.modules:
            self.remove(ctx.module_name)
        self.modules[ctx.module_name] = ctx
        ctx.project = self
        for function in ctx.functions:
            self._add_function(ctx, function)
        for class_node in ctx.classes:
            self._add_class(ctx, class_node)
        self._invalidate()

    def remove(self, module_name: str) -> None:
        ctx = self.modules.pop(module_name, None)
        if ctx is None:
            return
        for table in (self.classes, self.functions):
            for name in [name for name, info in table.items() if info.ctx is ctx]:
                del table[name]
        for node in [node for node, info in self._function_by_node.items() if info.ctx is ctx]:
            del self._function_by_node[node]
        self._invalidate()

    def _invalidate(self) -> None:
        self._call_graph = None
        self._suffix_matches.clear()
        self.values.clear()

    def _owner_names(self, ctx: ModuleContext, node: cst.CSTNode) -> list[str]:
        owners = [
            ancestor.name.value
            for ancestor in ctx.ancestors(node)
            if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef))
        ]
        return list(reversed(owners))

    def qualify(self, ctx: ModuleContext, node: cst.FunctionDef | cst.ClassDef) -> str:
        parts = [ctx.module_name, *self._owner_names(ctx, node), node.name.value]
        return ".".join(part for part in parts if part)

    def _add_function(self, ctx: ModuleContext, node: cst.FunctionDef) -> None:
        owner = ctx.parent(ctx.parent(node) or node)
        class_qualname = self.qualify(ctx, owner) if isinstance(owner, cst.ClassDef) else None
        info = FunctionInfo(self.qualify(ctx, node), node, ctx, class_qualname)
        self.functions[info.qualname] = info
        self._function_by_node[node] = info

    def _add_class(self, ctx: ModuleContext, node: cst.ClassDef) -> None:
        info = ClassInfo(self.qualify(ctx, node), node, ctx)
        for base in node.bases:
            qualname = ctx.qualname(base.value)
            if qualname is not None:
                info.bases.append(knowledge.normalize(qualname))
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                info.methods[statement.name.value] = self._function_by_node[statement]
        self.classes[info.qualname] = info

    # -- queries -----------------------------------------------------------------------------
    def function_info(self, node: cst.FunctionDef) -> FunctionInfo | None:
        return self._function_by_node.get(node)

    def resolve_class(self, qualname: str, near: str = "") -> ClassInfo | None:
        return self._lookup(self.classes, qualname, near)

    def resolve_function(self, qualname: str, near: str = "") -> FunctionInfo | None:
        return self._lookup(self.functions, qualname, near)

    def _lookup(self, table: dict[str, InfoT], qualname: str, near: str) -> InfoT | None:
        """Exact name, else the same name under a longer module path (``import models`` in a
        script folder finds ``examples.mnist.models``), the one closest to ``near`` first."""
        info = table.get(qualname)
        if info is not None or "." not in qualname:
            return info
        key = (id(table), qualname)
        if key not in self._suffix_matches:
            suffix = "." + qualname
            self._suffix_matches[key] = [name for name in table if name.endswith(suffix)]
        candidates = self._suffix_matches[key]
        if not candidates:
            return None
        near_parts = near.split(".")

        def shared(name: str) -> int:
            parts = name.split(".")
            return next(
                (i for i, (a, b) in enumerate(zip(parts, near_parts, strict=False)) if a != b),
                min(len(parts), len(near_parts)),
            )

        return table[max(candidates, key=shared)]

    def mro(self, qualname: str) -> Iterator[str]:
        """The class and its ancestors (project classes followed, outside ones yielded by name)."""
        seen: set[str] = set()
        pending = [qualname]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            yield current
            info = self.resolve_class(current)
            if info is not None:
                pending.extend(info.bases)

    def is_subclass(self, qualname: str, bases: set[str] | frozenset[str]) -> bool:
        return any(knowledge.normalize(ancestor) in bases for ancestor in self.mro(qualname))

    def is_model_class(self, qualname: str) -> bool:
        return self.is_subclass(qualname, knowledge.MODULE_BASES)

    def method(self, class_qualname: str, name: str) -> FunctionInfo | None:
        for ancestor in self.mro(class_qualname):
            info = self.resolve_class(ancestor)
            if info is not None and name in info.methods:
                return info.methods[name]
        return None

    def resolve_callee(self, ctx: ModuleContext, call: cst.Call) -> FunctionInfo | ClassInfo | None:
        """The project function or class a call invokes, when the index can tell."""
        func = call.func
        qualname = ctx.qualname(func)
        if qualname is not None:
            near = ctx.module_name
            return self.resolve_function(qualname, near) or self.resolve_class(qualname, near)
        if isinstance(func, cst.Name):
            # a nested function defined in an enclosing scope
            for ancestor in ctx.ancestors(call):
                if isinstance(ancestor, cst.FunctionDef):
                    info = self._function_by_node.get(ancestor)
                    if info is not None and f"{info.qualname}.{func.value}" in self.functions:
                        return self.functions[f"{info.qualname}.{func.value}"]
            return None
        if isinstance(func, cst.Attribute):
            for class_qualname in self.values.infer(ctx, func.value):
                method = self.method(class_qualname, func.attr.value)
                if method is not None:
                    return method
        return None

    @property
    def call_graph(self) -> nx.MultiDiGraph:
        """Function qualname -> called project function, one edge per call with ``call``/``ctx``."""
        if self._call_graph is None:
            # published before it is filled: inference during the build sees the edges so far
            graph = self._call_graph = nx.MultiDiGraph()
            graph.add_nodes_from(self.functions)
            for ctx in self.modules.values():
                for call in ctx.calls:
                    callee = self.resolve_callee(ctx, call)
                    if not isinstance(callee, FunctionInfo):
                        continue
                    caller = self._function_by_node.get(ctx.enclosing_function(call))  # type: ignore[arg-type]
                    graph.add_edge(caller.qualname if caller else ctx.module_name, callee.qualname, call=call, ctx=ctx)
            self.values.clear()
        return self._call_graph

    def call_sites(self, function: FunctionInfo) -> list[tuple[ModuleContext, cst.Call]]:
        graph = self.call_graph
        if function.qualname not in graph:
            return []
        return [(data["ctx"], data["call"]) for _, _, data in graph.in_edges(function.qualname, data=True)]

    def infer(self, ctx: ModuleContext, expr: cst.BaseExpression) -> frozenset[str]:
        """Qualified names of the classes (or factories) whose instances ``expr`` may hold."""
        return self.values.infer(ctx, expr)
