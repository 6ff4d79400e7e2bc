"""ML002: gradients never cleared between optimizer steps."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, insert_before
from mllint.semantic.cfg import ENTRY, EXIT, ControlFlowGraph, Node
from mllint.semantic.training import Event, Kind, call_events, graph_events


class MissingZeroGrad(Rule):
    """## What it does
    Finds training loops that call `backward()` and `optimizer.step()` on every iteration but never
    clear the gradients on the way from one step to the next backward.

    ## Why is this bad?
    `backward()` adds to `.grad`; it does not overwrite it. Without `optimizer.zero_grad()` each step
    applies the sum of every gradient computed so far: the effective learning rate grows each
    iteration, the loss jumps around or creeps down far slower than it should, and nothing fails.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```
    Gradient accumulation (`zero_grad()` right after a step taken every k batches), `model.zero_grad()`,
    `param.grad = None` and LBFGS's `step(closure)` are all recognized.
    """

    code = "ML002"
    name = "missing-zero-grad"
    summary = "Training loop steps the optimizer without ever clearing gradients in between"
    triggers = ("backward",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for owner in [None, *ctx.functions]:
            yield from self._check_owner(ctx, owner)

    def _check_owner(self, ctx: ModuleContext, owner: cst.FunctionDef | None) -> Iterator[Finding]:
        if not _may_step(ctx, owner):
            return
        cfg = ctx.cfg(owner)
        events = graph_events(ctx, cfg)
        # a step inside a called helper is checked in the helper, which knows its branches
        steps = [
            (node, e)
            for node, found in events.items()
            for e in found
            if e.kind is Kind.STEP and not e.closure and not e.via_call
        ]
        if not steps or not any(e.kind is Kind.BACKWARD for found in events.values() for e in found):
            return
        reported: set[Node] = set()
        if owner is not None and not cfg.loop_bodies and _called_in_a_loop(ctx, owner):
            # a step helper called once per iteration: its exit leads back to its entry
            body = set(cfg.graph) | {ENTRY, EXIT}
            cfg.graph.add_edge(EXIT, ENTRY)
            try:
                for node, step in steps:
                    backward = _uncleared_backward(cfg, events, body, node, step)
                    if backward is not None and node not in reported:
                        reported.add(node)
                        yield _finding(step, backward)
            finally:
                cfg.graph.remove_edge(EXIT, ENTRY)
        for loop, body in cfg.loop_bodies.items():
            for node, step in steps:
                if node not in body or node in reported or _cleared_after(events[node], step):
                    continue
                backward = _uncleared_backward(cfg, events, body | {loop}, node, step)
                if backward is not None:
                    reported.add(node)
                    yield _finding(step, backward, _clear_first(ctx, step))


def _finding(step: Event, backward: cst.CSTNode, fix: Fix | None = None) -> Finding:
    return Finding(
        step.node,
        "optimizer steps every iteration but gradients are never cleared between steps: "
        "call `zero_grad()` once per step",
        (Related(backward, "gradients accumulate here, on top of the previous step's"),),
        fix,
    )


def _clear_first(ctx: ModuleContext, step: Event) -> Fix | None:
    """``optimizer.zero_grad()`` as the first statement of the loop that steps (unsafe: a loop meant
    to accumulate over several iterations needs the clearing elsewhere)."""
    loop = ctx.enclosing(step.node, (cst.For, cst.While))
    if step.target is None or loop is None or not isinstance(loop.body, cst.IndentedBlock) or not loop.body.body:
        return None
    statement = f"{step.target}.zero_grad()"
    message = f"Insert `{statement}` at the start of the iteration (review loops that accumulate gradients on purpose)"
    return Fix(message, (insert_before(loop.body.body[0], statement),), safe=False)


def _called_in_a_loop(ctx: ModuleContext, function: cst.FunctionDef) -> bool:
    """Some call of the function runs in a loop that does not clear gradients itself."""
    info = ctx.project.function_info(function) if ctx.project else None
    if info is None:
        return False
    for caller_ctx, call in ctx.project.call_sites(info):
        loop = caller_ctx.enclosing(call, (cst.For, cst.While))
        if loop is None:
            continue
        others = [
            e
            for node in caller_ctx.walk(loop.body)
            if isinstance(node, cst.Call) and node is not call
            for e in call_events(caller_ctx, node)
        ]
        if not any(e.kind is Kind.CLEAR for e in others):
            return True
    return False


def _may_step(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    """Cheap gate: the function itself calls ``.step(...)`` or ``backward``; helpers that do both
    are checked on their own."""
    return any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value in ("step", "backward")
        for call in ctx.scopes[owner].calls
    )


def _clears(event: Event, step: Event) -> bool:
    """A CLEAR of this optimizer's gradients (a model's or an unknown one's clears them all)."""
    return event.kind is Kind.CLEAR and (
        event.target is None or step.target is None or event.target == step.target or "opt" not in event.target.lower()
    )


def _cleared_after(events: list[Event], step: Event) -> bool:
    """The step's own statement clears after stepping (a helper that steps and zeroes)."""
    after = events[events.index(step) + 1 :]
    return any(_clears(e, step) for e in after)


def _uncleared_backward(
    cfg: ControlFlowGraph, events: dict[Node, list[Event]], body: set[Node], node: Node, step: Event
) -> cst.CSTNode | None:
    """A backward reached from the step, around the loop, before any clearing of its gradients."""
    clearing = set()
    targets = {}
    for other, found in events.items():
        kinds = [
            e for e in found if e.kind in (Kind.CLEAR, Kind.BACKWARD) and (e.kind is Kind.BACKWARD or _clears(e, step))
        ]
        if not kinds:
            continue
        if kinds[0].kind is Kind.CLEAR:
            clearing.add(other)
        else:
            targets[other] = kinds[0].node
    # ``for p in model.parameters(): p.grad = None`` clears, though the graph lets a loop run zero times
    for loop, loop_body in cfg.loop_bodies.items():
        if loop_body & clearing and not loop_body & targets.keys():
            clearing.add(loop)
    # ``if not update: continue`` skips the clearing and the step alike: not a path that accumulates
    clearing |= {other for other in body if isinstance(other, cst.Continue)}
    # a cycle step -> backward -> step around the loop on which this optimizer is never cleared
    met = cfg.cycle_through(node, set(targets) & body, avoiding=clearing, within=body, correlated=True)
    return targets.get(met) if met is not None else None
