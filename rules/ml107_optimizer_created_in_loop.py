"""ML107: an optimizer or scheduler built anew on every iteration of the loop that trains with it."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.names import dotted_name
from mllint.semantic.project import FunctionInfo
from mllint.semantic.scan import walk
from mllint.semantic.training import Kind, function_events
from mllint.semantic.values import argument

#: signs that the set of trained parameters changes from one iteration to the next
CHANGING_PARAMETERS = ("requires_grad", "load_state_dict", "reset_parameters")
STATE = {"optimizer": "state (momentum buffers, moment estimates)", "scheduler": "schedule"}


class OptimizerCreatedInLoop(Rule):
    """## What it does
    Finds an optimizer or learning-rate scheduler constructed inside the loop that trains with it
    (the loop steps it), for a model that lives on from one iteration to the next.

    ## Why is this bad?
    Each construction starts from scratch: momentum buffers and Adam's moment estimates are thrown
    away every epoch (or every step), the scheduler restarts its warm-up or decay, and a learning rate
    set through `param_groups` is forgotten. Training still runs, only worse: slower convergence,
    noisier loss, a schedule that never reaches its later phases.

    ## Example
    ```python
    for epoch in range(epochs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for x, y in loader:
            ...
            optimizer.step()
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for epoch in range(epochs):
        for x, y in loader:
            ...
            optimizer.step()
    ```
    A fresh optimizer for a model (or parameters) built in the same iteration, per fold, trial or
    task, is not reported; nor one rebuilt while the set of trainable parameters changes
    (`requires_grad` toggled, weights reloaded).
    """

    code = "ML107"
    name = "optimizer-created-in-loop"
    summary = "Optimizer or scheduler constructed inside the loop that steps it: its state resets"
    severity = "warning"
    triggers = ("optim", "scheduler", "Scheduler", "Adam", "SGD")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            kind = _construction_kind(ctx, call)
            statement = ctx.parent(call)
            if kind is None or not isinstance(statement, cst.Assign) or len(statement.targets) != 1:
                continue
            built = dotted_name(statement.targets[0].target)
            source = _source_argument(call, kind)
            roots = _roots(source) if source is not None else set()
            if built is None or not roots:
                continue
            for loop in _enclosing_loops(ctx, call):
                use = _steps_in(ctx, loop, built, call)
                if use is None or roots & _bound_in(loop) or _parameters_change(ctx, loop, source):
                    continue
                yield Finding(
                    call,
                    f"a new {kind} is built on every iteration of the loop that trains with it: its "
                    f"{STATE[kind]} starts over each time; build it once, before the loop",
                    (Related(use, f"the {kind} is used here"), Related(loop, "the loop")),
                )
                break


def _construction_kind(ctx: ModuleContext, call: cst.Call) -> str | None:
    qualname = ctx.qualname(call.func)
    if qualname is None:
        return None
    if knowledge.is_scheduler_class(qualname):
        return "scheduler"
    if knowledge.is_optimizer_class(qualname):
        return "optimizer"
    return None


def _source_argument(call: cst.Call, kind: str) -> cst.BaseExpression | None:
    """The parameters an optimizer trains, the optimizer a scheduler drives."""
    return argument(call, "params" if kind == "optimizer" else "optimizer", 0)


def _roots(expr: cst.BaseExpression) -> set[str]:
    """Names the expression reads (``model`` in ``model.fc.parameters()``), comprehension variables aside."""
    found = set()
    local = set()
    for node in walk(expr):
        if isinstance(node, cst.Name) and not _is_attribute_name(node, expr):
            found.add(node.value)
        elif isinstance(node, cst.CompFor):
            local |= {n.value for n in walk(node.target) if isinstance(n, cst.Name)}
    return found - local


def _is_attribute_name(name: cst.Name, root: cst.CSTNode) -> bool:
    """``parameters`` in ``model.parameters``: an attribute, not a variable read."""
    for node in walk(root):
        if isinstance(node, cst.Attribute) and node.attr is name:
            return True
        if isinstance(node, cst.Arg) and node.keyword is name:
            return True
    return False


def _enclosing_loops(ctx: ModuleContext, node: cst.CSTNode) -> Iterator[cst.For | cst.While]:
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return
        if isinstance(ancestor, (cst.For, cst.While)):
            yield ancestor


def _steps_in(ctx: ModuleContext, loop: cst.For | cst.While, built: str, construction: cst.Call) -> cst.Call | None:
    """A call in the loop that steps the object (``opt.step()``, ``scaler.step(opt)``) or hands it to a
    project function that steps it."""
    for node in walk(loop.body):
        if not isinstance(node, cst.Call) or node is construction:
            continue
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
        if method == "step" and dotted_name(node.func.value) == built:  # type: ignore[union-attr]
            return node
        passed = any(dotted_name(arg.value) == built for arg in node.args)
        if passed and (method == "step" or _steps_inside(ctx, node)):
            return node
    return None


def _steps_inside(ctx: ModuleContext, call: cst.Call) -> bool:
    callee = ctx.project.resolve_callee(ctx, call) if ctx.project is not None else None
    if not isinstance(callee, FunctionInfo):
        return False
    return any(e.kind in (Kind.STEP, Kind.SCHEDULER_STEP) for e in function_events(callee.ctx, callee.node))


def _bound_in(loop: cst.For | cst.While) -> set[str]:
    """Names assigned anywhere in the loop (its own target included)."""
    bound = set()
    targets: list[cst.BaseExpression] = [loop.target] if isinstance(loop, cst.For) else []
    for node in walk(loop.body):
        if isinstance(node, cst.Assign):
            targets.extend(target.target for target in node.targets)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.For, cst.CompFor)):
            targets.append(node.target)
        elif isinstance(node, cst.AsName):
            targets.append(node.name)  # type: ignore[arg-type]
    for target in targets:
        bound |= {n.value for n in walk(target) if isinstance(n, cst.Name)}
    return bound


def _parameters_change(ctx: ModuleContext, loop: cst.For | cst.While, source: cst.BaseExpression) -> bool:
    """Parameters frozen / unfrozen or reloaded in the loop, or filtered when the optimizer is built."""
    if "filter(" in ctx.code(source) or "requires_grad" in ctx.code(source):
        return True
    return any(word in ctx.code(loop.body) for word in CHANGING_PARAMETERS)
