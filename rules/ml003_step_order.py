"""ML003: backward, zero_grad, step, scheduler step and clipping called in the wrong order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, insert_before, move_after, move_before
from mllint.semantic import knowledge
from mllint.semantic.cfg import ENTRY, ControlFlowGraph, Node
from mllint.semantic.training import Event, Kind, graph_events


@dataclass
class Region:
    """One iteration of a loop (or one call of a function): where order is judged."""

    cfg: ControlFlowGraph
    start: Node
    nodes: set[Node]
    events: dict[Node, list[Event]]

    def nodes_with(self, kind: Kind, direct: bool = False) -> list[tuple[Node, Event]]:
        return [
            (node, event)
            for node in self.nodes
            for event in self.events.get(node, ())
            if event.kind is kind and not (direct and event.via_call)
        ]

    def backward_nodes(self) -> set[Node]:
        """Backward calls, and the headers of inner loops that run one (the loop may run zero
        times on paper, never in a training script)."""
        nodes = {node for node, _ in self.nodes_with(Kind.BACKWARD)}
        for loop, body in self.cfg.loop_bodies.items():
            if loop in self.nodes and body & nodes:
                nodes.add(loop)
        return nodes

    def path(self, source: Node, target: Node, avoiding: set[Node] = frozenset()) -> bool:
        """Within the iteration: no back edge to the loop header."""
        return self.cfg.has_path(source, target, avoiding=avoiding, within=self.nodes)


class StepOrder(Rule):
    """## What it does
    Finds the steps of a training iteration called in the wrong order: `optimizer.step()` before
    `backward()`; `zero_grad()` between `backward()` and `step()` (or inside a gradient-accumulation
    loop whose step comes after it); `lr_scheduler.step()` before `optimizer.step()`; gradient
    clipping after the step or before `backward()`; clipping under `GradScaler` without
    `scaler.unscale_(optimizer)` first; clipping inside Lightning's `training_step`, which runs before
    Lightning calls `backward()`.

    ## Why is this bad?
    Each of these silently changes what is trained: a step that applies last iteration's (or no)
    gradients, gradients erased before they are used, a learning-rate schedule shifted by one step
    (PyTorch only warns once), clipping that never touches the update, or a clipping threshold compared
    against gradients still multiplied by the loss scale. The loss still goes down, a little.

    ## Example
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    ```

    ## Use instead
    ```python
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    scheduler.step()
    ```
    """

    code = "ML003"
    name = "step-order"
    summary = "step / backward / zero_grad / scheduler / clipping called in the wrong order"
    triggers = ("backward", "clip_grad", "training_step")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        seen: set[cst.CSTNode] = set()
        for owner in [None, *ctx.functions]:
            if not _has_training_calls(ctx, owner):
                continue
            for finding in self._check_owner(ctx, owner):
                if finding.node not in seen:
                    seen.add(finding.node)
                    yield finding

    def _check_owner(self, ctx: ModuleContext, owner: cst.FunctionDef | None) -> Iterator[Finding]:
        cfg = ctx.cfg(owner)
        events = graph_events(ctx, cfg)
        if not events:
            return
        if owner is not None and _is_lightning_training_step(ctx, owner):
            yield from _lightning_clipping(events)
        # judged per iteration: a region holds no loop header of its own, so no back edge is taken
        regions = [Region(cfg, loop, body, events) for loop, body in cfg.loop_bodies.items()]
        in_loops = set(cfg.loop_bodies).union(*cfg.loop_bodies.values())
        regions.append(Region(cfg, ENTRY, set(cfg.graph) - in_loops, events))
        for region in regions:
            yield from _step_before_backward(region)
            yield from _zero_grad_before_step(region)
            yield from _scheduler_first(region)
            yield from _clipping(region)
        yield from _zero_grad_in_accumulation_loop(cfg, events)


def _has_training_calls(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    names = {"step", "backward", "clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "manual_backward"}
    return any(
        (isinstance(call.func, cst.Attribute) and call.func.attr.value in names)
        or (isinstance(call.func, cst.Name) and call.func.value in names)
        for call in ctx.scopes[owner].calls
    )


def _step_before_backward(region: Region) -> Iterator[Finding]:
    backwards = region.nodes_with(Kind.BACKWARD)
    if not backwards:
        return
    for node, step in region.nodes_with(Kind.STEP, direct=True):
        if step.closure:
            continue
        before = not region.path(region.start, node, region.backward_nodes())
        after = next((event for b, event in backwards if region.path(node, b)), None)
        if not before and after is not None:
            yield Finding(
                step.node,
                "`step()` runs before `backward()` in this iteration: it applies stale (or no) gradients",
                (Related(after.node, "backward() runs after the step"),),
            )


def _zero_grad_before_step(region: Region) -> Iterator[Finding]:
    backwards = {node for node, _ in region.nodes_with(Kind.BACKWARD)}
    steps = region.nodes_with(Kind.STEP, direct=True)
    for node, clear in region.nodes_with(Kind.CLEAR):
        if any(e.kind is Kind.BACKWARD for e in region.events[node]):
            continue  # a helper that clears, then computes gradients
        for step_node, step in steps:
            if not _same_optimizer(clear, step):
                continue
            if any(region.path(b, node, {step_node}) for b in backwards) and region.path(node, step_node, backwards):
                yield Finding(
                    clear.node,
                    "gradients are cleared between `backward()` and `step()`: the step applies nothing",
                    (Related(step.node, "the optimizer steps here"),),
                )
                break


def _zero_grad_in_accumulation_loop(cfg: ControlFlowGraph, events: dict[Node, list[Event]]) -> Iterator[Finding]:
    """``for micro in chunks: opt.zero_grad(); loss.backward()`` then ``opt.step()`` after the loop."""
    for loop, body in cfg.loop_bodies.items():
        inside = [(n, e) for n in body for e in events.get(n, ())]
        if any(e.kind is Kind.STEP for _, e in inside) or not any(e.kind is Kind.BACKWARD for _, e in inside):
            continue
        clears = [e for _, e in inside if e.kind is Kind.CLEAR]
        steps_after = [
            (n, e)
            for n, found in events.items()
            if n not in body
            for e in found
            if e.kind is Kind.STEP and not e.via_call and not e.closure and cfg.has_path(loop, n, avoiding=body)
        ]
        for clear in clears:
            step = next((e for _, e in steps_after if _same_optimizer(clear, e)), None)
            if step is not None:
                yield Finding(
                    clear.node,
                    "gradients are cleared inside the accumulation loop: the step after it only sees the "
                    "last micro-batch's gradients",
                    (Related(step.node, "the optimizer steps here, after the loop"),),
                )


def _scheduler_first(region: Region) -> Iterator[Finding]:
    step_events = region.nodes_with(Kind.STEP, direct=True)
    steps = {node for node, _ in step_events}
    for node, scheduler_step in region.nodes_with(Kind.SCHEDULER_STEP, direct=True):
        call = scheduler_step.node
        if isinstance(call, cst.Call) and call.args:
            continue  # ReduceLROnPlateau.step(metric), epoch-indexed steps
        if node in steps:
            continue
        if region.path(region.start, node, steps) and any(region.path(node, s) for s in steps):
            if any(region.path(s, node) for s in steps):
                continue  # both orders happen (a step at the end of the previous branch)
            step = next(event for s, event in step_events if region.path(node, s))
            yield Finding(
                call,
                "`lr_scheduler.step()` runs before `optimizer.step()`: the first learning rate is skipped",
                fix=Fix("Move `scheduler.step()` after `optimizer.step()`", (move_after(call, step.node),)),
            )


def _clipping(region: Region) -> Iterator[Finding]:
    backwards = region.backward_nodes()
    step_events = region.nodes_with(Kind.STEP)
    steps = {node for node, _ in step_events}
    unscales = {node for node, _ in region.nodes_with(Kind.UNSCALE)}
    backward_events = region.nodes_with(Kind.BACKWARD, direct=True)
    scaled_backwards = {node for node, e in region.nodes_with(Kind.BACKWARD) if e.scaled}
    for node, clip in region.nodes_with(Kind.CLIP, direct=True):
        if not backwards or not steps:
            continue
        if region.path(region.start, node, backwards | {node}) and any(region.path(node, b) for b in backwards):
            backward = next((event for b, event in backward_events if region.path(node, b)), None)
            move = Fix("Clip after `backward()`", (move_after(clip.node, backward.node),)) if backward else None
            yield Finding(clip.node, "gradients are clipped before `backward()` computes them", fix=move)
        elif any(region.path(s, node, backwards) for s in steps) and not any(
            region.path(node, s, backwards) for s in steps
        ):
            step = next(event for s, event in step_events if region.path(s, node, backwards))
            move = None if step.via_call else Fix("Clip before the step", (move_before(clip.node, step.node),))
            yield Finding(
                clip.node, "gradients are clipped after `optimizer.step()`: the update was not clipped", fix=move
            )
        elif not clip.scaled and any(region.path(b, node, unscales) for b in scaled_backwards):
            yield Finding(
                clip.node,
                "gradients are clipped while still scaled by GradScaler: call `scaler.unscale_(optimizer)` first",
                fix=_unscale_first(region, clip),
            )


def _unscale_first(region: Region, clip: Event) -> Fix | None:
    """``scaler.unscale_(optimizer)`` before the clipping, when both names can be read off the loop."""
    scalers = {_code(e.node.func.value.func.value) for _, e in region.nodes_with(Kind.BACKWARD) if _scaled_call(e)}
    optimizers = {e.target for _, e in region.nodes_with(Kind.STEP, direct=True) if e.target}
    if len(scalers) != 1 or len(optimizers) != 1:
        return None
    statement = f"{scalers.pop()}.unscale_({optimizers.pop()})"
    return Fix(f"Insert `{statement}` before clipping", (insert_before(clip.node, statement),))


def _scaled_call(event: Event) -> bool:
    """``scaler.scale(loss).backward()``"""
    node = event.node
    return (
        event.scaled
        and isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and isinstance(node.func.value, cst.Call)
        and isinstance(node.func.value.func, cst.Attribute)
    )


_code = cst.Module([]).code_for_node


def _same_optimizer(clear: Event, step: Event) -> bool:
    if clear.target is None or step.target is None or clear.target == step.target:
        return True
    return "opt" not in clear.target.lower()  # model.zero_grad() clears every optimizer's parameters


def _is_lightning_training_step(ctx: ModuleContext, function: cst.FunctionDef) -> bool:
    if function.name.value != "training_step" or ctx.project is None:
        return False
    info = ctx.project.function_info(function)
    if info is None or info.class_qualname is None:
        return False
    return ctx.project.is_subclass(info.class_qualname, knowledge.LIGHTNING_BASES)


def _lightning_clipping(events: dict[Node, list[Event]]) -> Iterator[Finding]:
    found = [e for found in events.values() for e in found]
    if any(e.kind in (Kind.BACKWARD, Kind.STEP) for e in found):
        return  # manual optimization: the step is ours, and so is the order
    for event in found:
        if event.kind is Kind.CLIP and not event.via_call:
            yield Finding(
                event.node,
                "clipping inside `training_step` runs before Lightning calls `backward()`: use the Trainer's "
                "`gradient_clip_val` or `configure_gradient_clipping`",
            )
