"""ML106: a backpropagated loss summed into a running total, graph and all."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, replace
from mllint.semantic.cfg import ControlFlowGraph, Node
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import iter_children
from mllint.semantic.training import Kind, backward_operand, graph_events, without_grad

#: calls and attributes that turn a tensor into a number or a graph-free tensor
DETACHING_METHODS = {"item", "detach", "tolist", "numpy", "detach_"}
DETACHING_FUNCTIONS = {"float", "int", "builtins.float", "builtins.int"}


class LossAccumulatedWithGraph(Rule):
    """## What it does
    Finds a loss that is backpropagated every iteration and also added, as a tensor, to a total
    that lives across iterations (`running_loss += loss`).

    ## Why is this bad?
    The sum is a tensor that records the addition in the autograd graph, and through it holds on to
    every iteration's loss and its graph. Memory grows step after step until the GPU runs out, often
    hours in, and each epoch runs slower than the last.

    ## Example
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss
    ```

    ## Use instead
    ```python
    for x, y in loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    ```
    A total that is itself backpropagated (losses summed over heads or accumulation steps), one reset
    on every iteration, and sums of `loss.item()` / `loss.detach()` / `float(loss)` are not reported.
    """

    code = "ML106"
    name = "loss-accumulated-with-graph"
    summary = "Backpropagated loss tensor summed across iterations: every graph is kept alive"
    severity = "warning"
    triggers = ("backward",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for owner in [None, *ctx.functions]:
            if not any(_method(call) in ("backward", "manual_backward") for call in ctx.scopes[owner].calls):
                continue
            cfg = ctx.cfg(owner)
            backwards = {
                node: event.node
                for node, events in graph_events(ctx, cfg).items()
                for event in events
                if event.kind is Kind.BACKWARD and not event.via_call and isinstance(event.node, cst.Call)
            }
            backpropagated = {name for call in backwards.values() for name in _names_in(backward_operand(ctx, call))}
            for node in cfg.graph:
                accumulation = _accumulation(node)
                if accumulation is None:
                    continue
                total, added = accumulation
                if total in backpropagated or without_grad(ctx, node):
                    continue
                term = _live_term(ctx, added, backpropagated)
                backward = _backward_kept_across(cfg, node, total, set(backwards)) if term is not None else None
                if term is not None and backward is not None:
                    yield Finding(
                        node,
                        f"`{total}` adds up the loss tensor `{ctx.code(term)}` with its autograd graph, across "
                        f"iterations: memory grows every step; add `{ctx.code(term)}.item()` instead",
                        (Related(backwards[backward], "the loss is backpropagated here"),),
                        _item(term),
                    )


def _item(term: cst.BaseExpression) -> Fix | None:
    """Add the term's ``.item()``: a Python number, no graph (unsafe: the total is a float from then
    on, and a term that is not a single number raises)."""
    if not isinstance(term, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        return None  # ``loss * n``: the method would bind to ``n`` alone
    item = cst.Call(cst.Attribute(term, cst.Name("item")))
    return Fix("Add the loss's value, `.item()`, not the tensor", (replace(term, item),), safe=False)


def _method(call: cst.Call) -> str | None:
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def _names_in(expr: cst.BaseExpression | None) -> set[str]:
    if expr is None:
        return set()
    found = set()
    stack: list[cst.CSTNode] = [expr]
    while stack:
        node = stack.pop()
        name = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
        if name is not None:
            found.add(name)
            continue
        stack.extend(node.children)
    return found


def _accumulation(node: Node) -> tuple[str, cst.BaseExpression] | None:
    """``total += x`` or ``total = total + x``: the total's name and what is added."""
    if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign):
        total = dotted_name(node.target)
        return (total, node.value) if total is not None else None
    if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.value, cst.BinaryOperation):
        total = dotted_name(node.targets[0].target)
        value = node.value
        if total is None or not isinstance(value.operator, cst.Add):
            return None
        if dotted_name(value.left) == total:
            return total, value.right
        if dotted_name(value.right) == total:
            return total, value.left
    return None


def _live_term(ctx: ModuleContext, added: cst.BaseExpression, losses: set[str]) -> cst.BaseExpression | None:
    """A backpropagated loss in the added expression, not turned into a number or detached first."""
    stack: list[cst.CSTNode] = [added]
    while stack:
        node = stack.pop()
        if _detaches(ctx, node):
            continue
        name = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
        if name is not None:
            if name in losses and not (isinstance(node, cst.Name) and _detached_before(ctx, node)):
                return node  # type: ignore[return-value]
            continue
        stack.extend(iter_children(node))
    return None


def _detaches(ctx: ModuleContext, node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Attribute):
        return node.attr.value == "data"
    if not isinstance(node, cst.Call):
        return False
    return _method(node) in DETACHING_METHODS or (ctx.qualname(node.func) or dotted_name(node.func)) in (
        DETACHING_FUNCTIONS
    )


def _detached_before(ctx: ModuleContext, name: cst.Name) -> bool:
    """``loss = loss.item()`` (or any number) between the backward and the sum."""
    binding = ctx.reaching_binding(name)
    return binding is not None and binding.kind == "assign" and _detaches(ctx, binding.value)


def _backward_kept_across(cfg: ControlFlowGraph, node: Node, total: str, backwards: set[Node]) -> Node | None:
    """The backward of a loop in which the total survives from one iteration to the next."""
    resets = {
        other
        for other in cfg.graph
        if other is not node
        and isinstance(other, cst.Assign)
        and any(dotted_name(target.target) == total for target in other.targets)
    }
    for loop, body in cfg.loop_bodies.items():
        inside = body & backwards
        if node in body and inside and cfg.has_path(node, node, avoiding=resets, within=body | {loop}):
            return next(iter(inside))
    return None
