"""ML104: the log of a softmax or sigmoid output."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, replace
from mllint.semantic import knowledge
from mllint.semantic.activations import Normalization, normalization

LOG_FUNCTIONS = {"torch.log", "torch.Tensor.log", "jax.numpy.log"}
#: the fused, stable replacement of log(activation)
REPLACEMENTS = {"softmax": "log_softmax", "sigmoid": "F.logsigmoid"}


class LogOfSoftmax(Rule):
    """## What it does
    Finds the logarithm of a softmax or sigmoid output: `torch.log(F.softmax(x, dim=1))`,
    `probs.log()`, `torch.log(torch.sigmoid(x))`, the activation applied inline, through a
    variable or at the end of a model's `forward`.

    ## Why is this bad?
    Softmax and sigmoid underflow to exactly 0 for confident predictions (a logit margin of about
    100 in float32, much less in half precision); the log then gives `-inf`, the loss becomes
    `inf` or `NaN` and the gradient `NaN`, which a few steps later spreads into every weight.
    Until then the values are merely imprecise. `log_softmax` and `logsigmoid` compute the same
    quantity stably (log-sum-exp).

    ## Example
    ```python
    log_probs = torch.log(F.softmax(logits, dim=-1))
    loss = F.nll_loss(log_probs, target)
    ```

    ## Use instead
    ```python
    log_probs = F.log_softmax(logits, dim=-1)
    loss = F.nll_loss(log_probs, target)
    ```
    """

    code = "ML104"
    name = "log-of-softmax"
    summary = "log(softmax(x)) / log(sigmoid(x)): -inf on underflow; use log_softmax / logsigmoid"
    severity = "warning"
    triggers = ("log",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            argument = _log_argument(ctx, call)
            found = normalization(ctx, argument) if argument is not None else None
            if found is None or found.kind not in REPLACEMENTS:
                continue
            note = Related(found.node, f"{found.kind} applied here", None if found.ctx is ctx else found.ctx)
            yield Finding(
                call,
                f"log of a {found.kind} output: -inf once a probability underflows; use {REPLACEMENTS[found.kind]}",
                (note,),
                _fused(ctx, call, argument, found),
            )


#: the fused log-activation of the same library, by the activation's qualified name
FUSED = {
    "torch.nn.functional.softmax": "log_softmax",
    "torch.softmax": "log_softmax",
    "torch.Tensor.softmax": "log_softmax",
    "torch.nn.functional.sigmoid": "logsigmoid",
    "jax.nn.softmax": "log_softmax",
    "jax.nn.sigmoid": "log_sigmoid",
}


def _fused(ctx: ModuleContext, log: cst.Call, argument: cst.BaseExpression, found: Normalization) -> Fix | None:
    """``torch.log(F.softmax(x, dim=1))`` -> ``F.log_softmax(x, dim=1)``: the same function of ``x``,
    computed without the underflow. Offered when the activation is the log's own argument."""
    activation = found.node
    if found.ctx is not ctx or activation is not argument or not isinstance(activation, cst.Call):
        return None
    if not isinstance(activation.func, cst.Attribute):
        return None
    qualname = knowledge.normalize(ctx.qualname(activation.func) or "")
    if not qualname and activation.func.attr.value == "softmax":
        qualname = "torch.Tensor.softmax"  # ``logits.softmax(dim=1)``: a tensor method
    fused = FUSED.get(qualname)
    if fused is None:
        return None
    rewritten = activation.with_changes(func=activation.func.with_changes(attr=cst.Name(fused)))
    return Fix(f"Use `{fused}`", (replace(log, rewritten),))


def _log_argument(ctx: ModuleContext, call: cst.Call) -> cst.BaseExpression | None:
    """What ``torch.log(x)`` / ``x.log()`` takes the logarithm of."""
    qualname = ctx.qualname(call.func)
    if qualname is not None:
        if knowledge.normalize(qualname) in LOG_FUNCTIONS and call.args and not call.args[0].star:
            return call.args[0].value
        return None
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "log" and not call.args:
        return call.func.value
    return None
