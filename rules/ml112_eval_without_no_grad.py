"""ML112: an evaluation loop that records autograd graphs it never uses."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.cfg import Node
from mllint.semantic.project import FunctionInfo
from mllint.semantic.scan import walk
from mllint.semantic.training import Event, Kind, graph_events, is_torch_model, last_mode, without_grad

#: text that shows the function needs gradients, or turns them off another way
GRADIENT_AWARE = ("requires_grad", "set_grad_enabled", "autograd.grad", "enable_grad", "grad_mode")
DEFINITIONS = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


class EvalWithoutNoGrad(Rule):
    """## What it does
    Finds an evaluation loop (after `model.eval()`, with no backward or optimizer step in it) that
    runs a PyTorch model outside `torch.no_grad()` / `torch.inference_mode()`.

    ## Why is this bad?
    `eval()` changes how dropout and batch-norm behave; it does not turn off autograd. Every forward
    pass still records its graph and keeps the activations for a backward that never comes: several
    times the memory and noticeably more time per batch. Validation runs out of GPU memory with a
    batch size that trains fine, or evaluation is simply slow.

    ## Example
    ```python
    model.eval()
    for x, y in val_loader:
        loss_sum += criterion(model(x), y).item()
    ```

    ## Use instead
    ```python
    model.eval()
    with torch.no_grad():
        for x, y in val_loader:
            loss_sum += criterion(model(x), y).item()
    ```
    Functions decorated with `@torch.no_grad()` / `@torch.inference_mode()`, functions whose callers
    all wrap the call in one, Lightning's validation hooks and code that needs gradients
    (`requires_grad`, `torch.autograd.grad`) are not reported.
    """

    code = "ML112"
    name = "eval-without-no-grad"
    summary = "Evaluation loop runs the model with autograd on: graphs built and kept for nothing"
    severity = "warning"
    triggers = (".eval(",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for owner in [None, *ctx.functions]:
            if not _switches_to_eval(ctx, owner) or _gradient_aware(ctx, owner) or _called_without_grad(ctx, owner):
                continue
            cfg = ctx.cfg(owner)
            events = graph_events(ctx, cfg)
            switches = [node for node, found in events.items() if last_mode(found) is Kind.EVAL]
            trains = {node for node, found in events.items() if last_mode(found) is Kind.TRAIN}
            reported: set[cst.Call] = set()
            for loop, body in cfg.loop_bodies.items():
                if _trains(events, body) or not any(cfg.has_path(s, loop, avoiding=trains) for s in switches):
                    continue
                forward = _forward_with_grad(ctx, loop)
                if forward is not None and forward not in reported:
                    reported.add(forward)
                    yield Finding(
                        forward,
                        "the model runs in an evaluation loop with autograd on: every batch builds a graph "
                        "that is never used; wrap the loop in `with torch.no_grad():`",
                        (Related(loop, "the evaluation loop"),),
                    )


def _switches_to_eval(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    """Cheap gate: a direct ``x.eval()`` call in the function."""
    return any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value == "eval" and not call.args
        for call in ctx.scopes[owner].calls
    )


def _trains(events: dict[Node, list[Event]], body: set[Node]) -> bool:
    return any(e.kind in (Kind.BACKWARD, Kind.STEP) for node in body for e in events.get(node, ()))


def _gradient_aware(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    if owner is not None:
        info = ctx.project.function_info(owner) if ctx.project else None
        if (
            info is not None
            and info.class_qualname
            and ctx.project.is_subclass(  # type: ignore[union-attr]
                info.class_qualname, knowledge.LIGHTNING_BASES
            )
        ):
            return True  # Lightning runs its validation hooks under no_grad
    if not any(word in ctx.source for word in GRADIENT_AWARE):
        return False  # nowhere in the module: no need to write the function's code out
    text = ctx.code(owner) if owner is not None else ctx.source
    return any(word in text for word in GRADIENT_AWARE)


def _called_without_grad(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    """Every project call of the function runs under ``no_grad``."""
    info = ctx.project.function_info(owner) if owner is not None and ctx.project else None
    if not isinstance(info, FunctionInfo):
        return False
    if not ctx.project.callers_known(info):  # type: ignore[union-attr]
        return True  # called from many modules (a library's helper): its callers own gradient mode
    sites = ctx.project.call_sites(info)  # type: ignore[union-attr]
    return bool(sites) and all(without_grad(caller_ctx, call) for caller_ctx, call in sites)


def _forward_with_grad(ctx: ModuleContext, loop: cst.For | cst.While) -> cst.Call | None:
    """A PyTorch model called in the loop body, outside ``no_grad`` and outside nested definitions."""
    for node in walk(loop.body):
        if not isinstance(node, cst.Call) or ctx.enclosing(node, DEFINITIONS) is not ctx.enclosing(loop, DEFINITIONS):
            continue
        if is_torch_model(ctx, node.func) and not without_grad(ctx, node) and not _parameterless(ctx, node.func):
            return node
    return None


def _parameterless(ctx: ModuleContext, func: cst.BaseExpression) -> bool:
    """``nn.Softmax(dim=1)(x)``: a layer without parameters records nothing worth a ``no_grad``."""
    classes = ctx.project.infer(ctx, func) if ctx.project is not None else frozenset()
    return bool(classes) and all(knowledge.is_parameterless_layer(q) for q in classes)
