"""Where a value comes from: the expressions an expression's value may have been built by.

:mod:`mllint.semantic.values` answers "which classes may ``loader`` hold?"; some questions need
the construction itself, with its arguments ("was this DataLoader built with ``shuffle=True``?").
Values are followed through assignments and tuple unpacking, ``with`` targets, ``self.x``
attributes set in any method of the class, parameters bound at the project's call sites, the
values returned by project functions, and wrappers that hand their argument through
(``enumerate(loader)``, ``tqdm(loader)``, ``accelerator.prepare(model, loader)``). The sources
are what cannot be followed further: constructor and library calls, literals, unknown names.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic.values import argument, unpacked

MAX_DEPTH = 8
#: one step back: the module and the expression a value is taken from
Step = tuple[ModuleContext, cst.BaseExpression]
#: calls whose result iterates (or is) their first argument
PASS_THROUGH = {
    "builtins.enumerate",
    "builtins.iter",
    "enumerate",
    "iter",
    "tqdm",
    "tqdm.tqdm",
    "tqdm.auto.tqdm",
    "tqdm.notebook.tqdm",
    "tqdm.rich.tqdm",
    "itertools.cycle",
    "itertools.islice",
}


@dataclass(frozen=True)
class Source:
    """An expression a value may come from, in the module where it is written."""

    ctx: ModuleContext
    expr: cst.BaseExpression


def value_sources(ctx: ModuleContext, expr: cst.BaseExpression) -> list[Source]:
    """The expressions whose value ``expr`` may hold (every alternative, in no particular order)."""
    found: dict[tuple[int, cst.BaseExpression], Source] = {}
    _follow(ctx, expr, 0, found, set())
    return list(found.values())


def _follow(
    ctx: ModuleContext,
    expr: cst.BaseExpression,
    depth: int,
    found: dict[tuple[int, cst.BaseExpression], Source],
    active: set[cst.CSTNode],
) -> None:
    if depth > MAX_DEPTH or expr in active:
        return
    active.add(expr)
    try:
        steps = _step(ctx, expr)
        for next_ctx, value in steps:
            _follow(next_ctx, value, depth + 1, found, active)
        if not steps:
            found[(id(ctx), expr)] = Source(ctx, expr)
    finally:
        active.discard(expr)


def _step(ctx: ModuleContext, expr: cst.BaseExpression) -> list[Step]:
    """The expressions ``expr`` takes its value from, one step back (empty: ``expr`` is a source)."""
    if isinstance(expr, cst.Name):
        return _name(ctx, expr)
    if isinstance(expr, cst.Attribute):
        return _self_attribute(ctx, expr)
    if isinstance(expr, cst.Call):
        if (ctx.qualname(expr.func) or _plain_name(expr.func)) in PASS_THROUGH and expr.args:
            return [(ctx, expr.args[0].value)]
        return _returned(ctx, expr)
    if isinstance(expr, cst.IfExp):
        return [(ctx, expr.body), (ctx, expr.orelse)]
    return []


def _plain_name(func: cst.BaseExpression) -> str | None:
    return func.value if isinstance(func, cst.Name) else None


def _name(ctx: ModuleContext, name: cst.Name) -> list[Step]:
    function = ctx.enclosing_function(name)
    while True:
        table = ctx.scopes.get(function)
        if table is not None and name.value in table.names and name.value not in table.outer_names:
            steps = []
            for binding in table.names[name.value]:
                if binding.kind not in ("assign", "with"):
                    continue
                element = unpacked(ctx, binding.value, binding.path)
                if element is not None:
                    steps.append(element)
            return steps
        if function is None:
            return []
        if _is_param(function, name.value):
            return _parameter(ctx, function, name.value)
        function = ctx.enclosing_function(function)


def _returned(ctx: ModuleContext, call: cst.Call) -> list[Step]:
    from mllint.semantic.project import FunctionInfo

    assert ctx.project is not None
    callee = ctx.project.resolve_callee(ctx, call)
    if not isinstance(callee, FunctionInfo):
        return []
    table = callee.ctx.scopes.get(callee.node)
    return [(callee.ctx, value) for value in table.returns] if table else []


def _is_param(function: cst.FunctionDef, name: str) -> bool:
    params = function.params
    return any(p.name.value == name for p in [*params.posonly_params, *params.params, *params.kwonly_params])


def _parameter(ctx: ModuleContext, function: cst.FunctionDef, name: str) -> list[Step]:
    """The arguments bound to a parameter at the project's call sites, and its default."""
    assert ctx.project is not None
    info = ctx.project.function_info(function)
    if info is None:
        return []
    param = next(p for p in info.params if p.name.value == name)
    steps = [(ctx, param.default)] if param.default is not None else []
    positional = [p.name.value for p in [*function.params.posonly_params, *function.params.params]]
    offset = 1 if info.class_qualname and positional and positional[0] in ("self", "cls") else 0
    index = positional.index(name) - offset if name in positional else None
    for caller_ctx, call in ctx.project.call_sites(info):
        passed = argument(call, name, index)
        if passed is not None:
            steps.append((caller_ctx, passed))
    return steps


def _self_attribute(ctx: ModuleContext, attribute: cst.Attribute) -> list[Step]:
    """``self.loader``: what any method of the class (or a project base) assigns to it."""
    if not (isinstance(attribute.value, cst.Name) and attribute.value.value == "self"):
        return []
    class_node = ctx.enclosing_class(attribute)
    assert ctx.project is not None
    if class_node is None:
        return []
    steps = []
    for info in ctx.project.classes_assigning(ctx.project.qualify(ctx, class_node), attribute.attr.value):
        for binding in info.self_bindings(attribute.attr.value):
            element = unpacked(info.ctx, binding.value, binding.path)
            if element is not None:
                steps.append(element)
    return steps
