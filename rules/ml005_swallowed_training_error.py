"""ML005: a broad ``except`` that swallows a failing training step."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic.names import dotted_name
from mllint.semantic.training import Kind, node_events

BROAD = {"Exception", "BaseException", "RuntimeError", "builtins.Exception", "builtins.BaseException"}
EXITS = {"sys.exit", "exit", "quit", "os._exit", "os.abort"}
#: words that show a handler tells one failure from another
SPECIFIC = re.compile(r"out of memory|outofmemory|\boom\b|isinstance|\bcuda\b|\bnan\b|\binf\b|errno", re.I)
TRAINING_METHODS = {"fit", "fit_transform", "train_step", "training_step", "train_epoch", "train_one_epoch"}


class SwallowedTrainingError(Rule):
    """## What it does
    Finds `try`/`except` around a forward pass, a backward pass, an optimizer step or a whole
    training run (`trainer.fit(...)`) that catches broadly (a bare `except`, `Exception`,
    `BaseException`, `RuntimeError`) and neither re-raises nor tells one failure from another.

    ## Why is this bad?
    Shape errors, NaNs, device mismatches and real bugs become a log line and a skipped batch (or a
    silently returned old checkpoint). Training "finishes", on a fraction of the data or not at all,
    and the numbers look merely disappointing.

    ## Example
    ```python
    for x, y in loader:
        try:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        except Exception as error:
            print("skipping batch:", error)
    ```

    ## Use instead
    ```python
    for x, y in loader:
        try:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        except torch.cuda.OutOfMemoryError:
            optimizer.zero_grad()
            torch.cuda.empty_cache()  # skip only the batch that did not fit
    ```
    `except KeyboardInterrupt` that saves a checkpoint, and handlers that re-raise (or exit) after
    handling a specific condition, are fine.
    """

    code = "ML005"
    name = "swallowed-training-error"
    summary = "Broad except around a training step neither re-raises nor handles a specific error"
    triggers = ("except",)
    severity = "warning"

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        if "except" not in ctx.source:
            return
        for node in ctx.tries:
            handler = next((h for h in node.handlers if _is_broad(ctx, h) and _swallows(ctx, h)), None)
            if handler is None:
                continue
            reason = _critical(ctx, node)
            if reason is not None:
                yield Finding(
                    handler,
                    "broad `except` swallows errors of the training step: re-raise, or catch the specific "
                    "error you mean to handle",
                    (Related(reason, "the guarded training code"),),
                )


def _is_broad(ctx: ModuleContext, handler: cst.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = [e.value for e in handler.type.elements] if isinstance(handler.type, cst.Tuple) else [handler.type]
    return any((ctx.qualname(t) or dotted_name(t) or "") in BROAD for t in types)


def _swallows(ctx: ModuleContext, handler: cst.ExceptHandler) -> bool:
    """No unconditional raise or exit, and no test that picks out a specific failure to re-raise."""
    statements = list(handler.body.body) if isinstance(handler.body, cst.IndentedBlock) else [handler.body]
    for statement in statements:
        if _raises_or_exits(ctx, statement):
            return False
    raises = any(isinstance(node, cst.Raise) for node in ctx.walk(handler.body))
    return not (raises and _inspects_error(ctx, handler))


def _raises_or_exits(ctx: ModuleContext, statement: cst.CSTNode) -> bool:
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Raise):
                return True
            call = small.value if isinstance(small, cst.Expr) else None
            if isinstance(call, cst.Call) and (ctx.qualname(call.func) or dotted_name(call.func) or "") in EXITS:
                return True
    return False


def _inspects_error(ctx: ModuleContext, handler: cst.ExceptHandler) -> bool:
    name = handler.name.name.value if handler.name and isinstance(handler.name.name, cst.Name) else None
    for node in ctx.walk(handler.body):
        if isinstance(node, (cst.If, cst.While)):
            test = ctx.code(node.test)
            if SPECIFIC.search(test) or (name and re.search(rf"\b{re.escape(name)}\b", test)):
                return True
    return False


def _critical(ctx: ModuleContext, node: cst.Try) -> cst.CSTNode | None:
    """The training code the ``try`` guards: a backward, a step, a model call, a fit; or, inside a
    training loop, a computation whose result the iteration goes on to use."""
    assert ctx.project is not None
    for inner in ctx.walk(node.body):
        if isinstance(inner, cst.Call):
            events = node_events(ctx, inner)
            if any(e.kind in (Kind.BACKWARD, Kind.STEP) for e in events):
                return inner
            method = inner.func.attr.value if isinstance(inner.func, cst.Attribute) else None
            if method in TRAINING_METHODS or _is_model(ctx, inner.func):
                return inner
    loop = ctx.enclosing(node, (cst.For, cst.While))
    if loop is not None and _trains(ctx, loop) and _assigns_used_later(ctx, node, loop):
        return node.body
    return None


def _is_model(ctx: ModuleContext, func: cst.BaseExpression) -> bool:
    assert ctx.project is not None
    return any(ctx.project.is_model_class(q) for q in ctx.project.infer(ctx, func))


def _trains(ctx: ModuleContext, loop: cst.For | cst.While) -> bool:
    return any(
        e.kind in (Kind.BACKWARD, Kind.STEP)
        for inner in ctx.walk(loop.body)
        if isinstance(inner, cst.Call)
        for e in node_events(ctx, inner)
    )


def _assigns_used_later(ctx: ModuleContext, node: cst.Try, loop: cst.For | cst.While) -> bool:
    assigned = {
        target.target.value
        for inner in ctx.walk(node.body)
        if isinstance(inner, cst.Assign)
        for target in inner.targets
        if isinstance(target.target, cst.Name)
    }
    after = ctx.order(node) + sum(1 for _ in ctx.walk(node))
    return any(
        isinstance(inner, cst.Name) and inner.value in assigned and ctx.order(inner) > after
        for inner in ctx.walk(loop.body)
    )
