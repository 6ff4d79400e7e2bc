"""ML117: ``torch.load`` left free to unpickle arbitrary objects."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, replace, with_keyword
from mllint.semantic.values import argument

LOADERS = {"torch.load", "torch.serialization.load"}
SAVERS = {"torch.save", "torch.serialization.save"}
BUFFERS = {"io.BytesIO"}


class TorchLoadUnpinned(Rule):
    """## What it does
    Finds `torch.load(...)` calls that do not pass `weights_only`. It stays quiet when
    `weights_only` is given either way (an explicit `False` is a deliberate choice) or decided by a
    `weights_only` variable of the enclosing function, and when the file is one the same function
    has just written with `torch.save` (the same path expression, or an in-memory `io.BytesIO()`
    buffer): those bytes come from the program itself.

    ## Why is this bad?
    Without `weights_only=True`, `torch.load` runs the full pickle machinery: a checkpoint
    downloaded from a model hub, a shared drive or a pull request can execute arbitrary code the
    moment it is loaded. Before PyTorch 2.6 this was the default; code written against it keeps
    the unsafe behaviour on every older installation, and on newer ones it fails only on the
    checkpoints that actually need pickling.

    ## Example
    ```python
    state = torch.load(args.checkpoint, map_location="cpu")
    model.load_state_dict(state["model"])
    ```

    ## Use instead
    ```python
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    ```
    State dicts of models and optimizers (tensors, numbers, strings, containers) load with the safe
    unpickler; register other classes with `torch.serialization.add_safe_globals`.
    """

    code = "ML117"
    name = "torch-load-unpinned"
    summary = "`torch.load` without `weights_only=True`: unpickling a checkpoint can run arbitrary code"
    severity = "warning"
    triggers = ("load",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            if ctx.qualname(call.func) not in LOADERS or _pins_or_forwards(call) or _chooses_mode(ctx, call):
                continue
            if _under_safe_globals(ctx, call):
                continue
            path = argument(call, "f", 0)
            if path is None or _written_here(ctx, call, path) or _in_memory_buffer(ctx, path):
                continue
            yield Finding(
                call,
                "`torch.load` without `weights_only=True` unpickles arbitrary objects: a crafted checkpoint "
                "runs code when loaded",
                (Related(path, "the file loaded"),),
                Fix(
                    "Pass `weights_only=True` (review: checkpoints that pickle more than tensors and plain "
                    "containers then fail to load)",
                    (replace(call, with_keyword(call, "weights_only", "True")),),
                    safe=False,
                ),
            )


def _pins_or_forwards(call: cst.Call) -> bool:
    """``weights_only`` passed (either way), or keyword arguments forwarded that may carry it."""
    return any(
        (arg.keyword is not None and arg.keyword.value == "weights_only") or arg.star == "**" for arg in call.args
    )


def _under_safe_globals(ctx: ModuleContext, call: cst.Call) -> bool:
    """Inside ``with torch.serialization.safe_globals([...])``: an allow-list only the weights-only
    unpickler reads, so the code is written for it (the default since torch 2.6)."""
    for node in ctx.ancestors(call):
        if isinstance(node, cst.With) and any(
            isinstance(item.item, cst.Call) and ctx.qualname(item.item.func) == "torch.serialization.safe_globals"
            for item in node.items
        ):
            return True
    return False


def _chooses_mode(ctx: ModuleContext, call: cst.Call) -> bool:
    """The enclosing function has a ``weights_only`` variable of its own: the call is a branch of
    a choice the caller makes (a fallback for versions of torch without the argument)."""
    function = ctx.enclosing_function(call)
    if function is None:
        return False
    params = function.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    return any(p.name.value == "weights_only" for p in every) or "weights_only" in ctx.scopes[function].names


def _written_here(ctx: ModuleContext, load: cst.Call, path: cst.BaseExpression) -> bool:
    """``torch.save(obj, p)`` with the same path expression in the same function."""
    function = ctx.enclosing_function(load)
    text = ctx.code(path)
    for call in ctx.scope_of(load).calls:
        if ctx.qualname(call.func) not in SAVERS or ctx.enclosing_function(call) is not function:
            continue
        saved = argument(call, "f", 1)
        if saved is not None and ctx.code(saved) == text:
            return True
    return False


def _in_memory_buffer(ctx: ModuleContext, path: cst.BaseExpression) -> bool:
    """A name bound only to a fresh ``io.BytesIO()``: it holds what the program wrote into it."""
    if not isinstance(path, cst.Name):
        return False
    bindings = ctx.scope_of(path).names.get(path.value, [])
    return bool(bindings) and all(
        isinstance(b.value, cst.Call) and ctx.qualname(b.value.func) in BUFFERS and not b.value.args and not b.path
        for b in bindings
    )
