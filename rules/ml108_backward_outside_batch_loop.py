"""ML108: backward() on a loss computed per batch, called after the batch loop has ended."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import Binding, walk
from mllint.semantic.training import Kind, backward_operand, call_events

#: wrappers that iterate over their first argument's elements
ITERATION_WRAPPERS = {"enumerate", "zip", "iter", "tqdm", "islice", "chain"}
#: statements that run on every iteration of the loop they are in
UNCONDITIONAL = (cst.IndentedBlock, cst.SimpleStatementLine, cst.SimpleStatementSuite, cst.With, cst.Try)


class BackwardOutsideBatchLoop(Rule):
    """## What it does
    Finds `loss.backward()` placed after a loop over batches, where the loss is computed anew on
    each batch inside the loop.

    ## Why is this bad?
    The loop overwrites the loss on every batch and only the last value survives it: one update per
    epoch, from the last mini-batch only. Everything else in the loop (forward passes, metrics) still
    runs, so the script looks busy and the loss even decreases a little. A dedent in an edit is all it
    takes.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    ```

    ## Use instead
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ```
    A loss summed over the loop (`loss = loss + ...`, full-batch training) and loops over something
    other than batches (`range(steps)`, parameters) are not reported.
    """

    code = "ML108"
    name = "backward-outside-batch-loop"
    summary = "backward() after the batch loop on a loss overwritten per batch: only the last batch trains"
    severity = "error"
    triggers = ("backward",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            if not any(e.kind is Kind.BACKWARD for e in call_events(ctx, call)):
                continue
            loss = backward_operand(ctx, call)
            if not isinstance(loss, cst.Name):
                continue
            loop = _batch_loop_overwriting(ctx, call, loss.value)
            if loop is not None:
                yield Finding(
                    call,
                    f"`{loss.value}` is recomputed on every batch of the loop above, but backpropagated only "
                    "after the loop ends: only the last batch trains",
                    (Related(loop, "the batch loop"),),
                )


def _batch_loop_overwriting(ctx: ModuleContext, backward: cst.Call, loss: str) -> cst.For | None:
    """A loop over batches, ended before the backward, that assigns the loss afresh each iteration,
    with no assignment of it between the loop and the backward."""
    function = ctx.enclosing_function(backward)
    bindings = ctx.scopes[function].names.get(loss, [])
    outer_loops = set(_loops_around(ctx, backward))
    for binding in bindings:
        loop = _fresh_in_loop(ctx, binding, loss)
        if loop is None or loop in outer_loops or ctx.order(loop) > ctx.order(backward):
            continue
        if not set(_loops_around(ctx, loop)) >= outer_loops or _reassigned_between(ctx, bindings, loop, backward):
            continue
        if _iterates_batches(ctx, loop.iter) and not _trains_or_breaks(ctx, loop):
            return loop
    return None


def _loops_around(ctx: ModuleContext, node: cst.CSTNode) -> Iterator[cst.For | cst.While]:
    for ancestor in ctx.ancestors(node):
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef)):
            return
        if isinstance(ancestor, (cst.For, cst.While)):
            yield ancestor


def _fresh_in_loop(ctx: ModuleContext, binding: Binding, loss: str) -> cst.For | None:
    """The ``for`` loop in which this assignment runs on every iteration, not reading the old value."""
    if binding.kind != "assign" or binding.node is None:
        return None
    if any(isinstance(node, cst.Name) and node.value == loss for node in walk(binding.value)):
        return None
    for ancestor in ctx.ancestors(binding.node):
        if isinstance(ancestor, cst.For):
            return ancestor
        if not isinstance(ancestor, UNCONDITIONAL):
            return None
    return None


def _reassigned_between(ctx: ModuleContext, bindings: list[Binding], loop: cst.For, backward: cst.Call) -> bool:
    inside = {b.node for b in bindings if b.node is not None and loop in set(ctx.ancestors(b.node))}
    return any(
        b.node is not None and b.node not in inside and ctx.order(loop) < ctx.order(b.node) < ctx.order(backward)
        for b in bindings
    )


def _iterates_batches(ctx: ModuleContext, iterable: cst.BaseExpression) -> bool:
    """A DataLoader (or a loader-like iterable), possibly wrapped in enumerate / zip / tqdm."""
    if isinstance(iterable, cst.Call):
        called = (ctx.qualname(iterable.func) or dotted_name(iterable.func) or "").rsplit(".", 1)[-1]
        if called in ITERATION_WRAPPERS:
            return any(_iterates_batches(ctx, arg.value) for arg in iterable.args if arg.keyword is None)
    values = ctx.project.infer(ctx, iterable) if ctx.project is not None else frozenset()
    if values:
        return any(value.rsplit(".", 1)[-1].endswith("Loader") for value in values)
    name = (dotted_name(iterable) or "").rsplit(".", 1)[-1].lower()
    return "loader" in name or name.endswith("batches")


def _trains_or_breaks(ctx: ModuleContext, loop: cst.For) -> bool:
    """The loop backpropagates itself, or leaves after one batch on purpose."""
    for node in walk(loop.body):
        if isinstance(node, cst.Call) and any(e.kind is Kind.BACKWARD for e in call_events(ctx, node)):
            return True
        if isinstance(node, cst.Break) and ctx.enclosing(node, (cst.For, cst.While)) is loop:
            return True
    return False
