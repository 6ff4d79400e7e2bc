"""Which loss a call computes, and the prediction it is given."""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.tensors import TENSOR_METHODS

#: keywords under which losses take their prediction
INPUT_KEYWORDS = ("input", "logits", "predictions", "preds")
#: libraries whose losses are known by name: their other functions need no inference
LIBRARIES = ("torch.", "tensorflow.", "keras.", "jax.", "optax.", "flax.", "numpy.", "sklearn.")


def computed_losses(ctx: ModuleContext, call: cst.Call) -> frozenset[str]:
    """The (normalized) losses a call may compute: ``F.cross_entropy(...)``, or a call of a loss
    object such as ``criterion(...)`` with ``criterion = nn.CrossEntropyLoss()``. Empty for the
    construction ``nn.CrossEntropyLoss()`` itself and for anything that is not a known loss.
    Several rules ask it of every call of a module: answered once per call."""
    key = ("computed_losses", call)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = frozenset(_computed_losses(ctx, call))
    return found  # type: ignore[return-value]


def _computed_losses(ctx: ModuleContext, call: cst.Call) -> set[str]:
    assert ctx.project is not None
    direct = knowledge.normalize(ctx.qualname(call.func) or "")
    if direct.rsplit(".", 1)[-1][:1].isupper():
        return set()  # ``nn.CrossEntropyLoss()`` builds the loss object; calling that object computes it
    if knowledge.is_loss(direct):
        return {direct}
    if direct.startswith(LIBRARIES):
        return set()  # a library's function that is not a loss
    if not direct and len(call.args) < 2 and not any(arg.star for arg in call.args):
        return set()  # a loss object takes a prediction and a target: no need to infer what is called
    if isinstance(call.func, cst.Attribute) and call.func.attr.value in TENSOR_METHODS:
        return set()  # ``logits.view(-1, n)``: a tensor's method, not a loss object
    inferred = {knowledge.normalize(q) for q in ctx.project.infer(ctx, call.func)}
    return {qualname for qualname in inferred if knowledge.is_loss(qualname)}


def loss_input(call: cst.Call) -> cst.BaseExpression | None:
    """The prediction passed to a loss: its first positional argument or ``input=``."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in INPUT_KEYWORDS:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[0].value if positional else None
