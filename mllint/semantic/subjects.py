"""Which project model a finding concerns: the subject a dynamic check builds and runs."""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic.activations import SHAPE_METHODS

MAX_DEPTH = 8


def sole_model_class(ctx: ModuleContext, expr: cst.BaseExpression) -> str | None:
    """The one project model class whose instances ``expr`` may hold (None: several, or none)."""
    assert ctx.project is not None
    models = {
        q
        for q in ctx.project.infer(ctx, expr)
        if ctx.project.is_model_class(q) and ctx.project.class_summary(q, ctx.module_name) is not None
    }
    return next(iter(models)) if len(models) == 1 else None


def model_output_call(ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> cst.Call | None:
    """The call of a project model whose output ``expr`` is, unchanged but for indexing and
    shape-only methods (``model(x)``, ``out[0]``, ``logits.view(-1)``, through assignments)."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(expr, cst.Name):
        binding = ctx.reaching_binding(expr)
        if binding is None or binding.path or binding.kind != "assign":
            return None
        return model_output_call(ctx, binding.value, depth + 1)
    if isinstance(expr, cst.Subscript):
        return model_output_call(ctx, expr.value, depth + 1)
    if not isinstance(expr, cst.Call):
        return None
    if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in SHAPE_METHODS:
        return model_output_call(ctx, expr.func.value, depth + 1)
    return expr if called_model(ctx, expr) is not None else None


def called_model(ctx: ModuleContext, call: cst.Call) -> str | None:
    """The project model class a call of a model instance (``model(x)``, ``model.forward(x)``) runs."""
    func = call.func
    target = func.value if isinstance(func, cst.Attribute) and func.attr.value == "forward" else func
    return sole_model_class(ctx, target)
