"""ML118: ``NLLLoss`` fed raw scores instead of log-probabilities."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, replace
from mllint.semantic import knowledge
from mllint.semantic.activations import normalization
from mllint.semantic.losses import computed_losses, loss_input

NLL_LOSSES = {"torch.nn.NLLLoss", "torch.nn.functional.nll_loss"}
#: what the loss received instead of log-probabilities (softmax probabilities are ML001's)
PROBLEMS = {
    "logits": ("raw scores of a linear / convolution layer", "output layer"),
    "sigmoid": ("sigmoid probabilities", "sigmoid applied here"),
}


class NLLOnRawLogits(Rule):
    """## What it does
    Finds `nn.NLLLoss` / `F.nll_loss` computed on the raw output of a linear or convolution layer
    (or on sigmoid probabilities) instead of `log_softmax` output: the layer called inline,
    through a variable, or last in a model's `forward`.

    ## Why is this bad?
    `NLLLoss` does not normalize anything: it only picks `-input[target]`. On raw scores the
    "loss" is the negated score of the right class, which the model lowers without bound by
    inflating that score; it goes negative, the other classes are never pushed down, and the
    accuracy stalls while the loss curve looks like progress.

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.conv(x)

    loss = nn.NLLLoss()(model(x), target)
    ```

    ## Use instead
    ```python
    loss = nn.CrossEntropyLoss()(model(x), target)  # log_softmax + NLLLoss in one
    ```
    or end `forward` with `F.log_softmax(..., dim=1)` and keep `NLLLoss`.
    """

    code = "ML118"
    name = "nll-on-raw-logits"
    summary = "NLLLoss / F.nll_loss fed raw logits or probabilities instead of log_softmax output"
    severity = "error"
    triggers = ("NLLLoss", "nll_loss", "loss", "criterion")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            if not computed_losses(ctx, call) & NLL_LOSSES:
                continue
            argument = loss_input(call)
            found = normalization(ctx, argument) if argument is not None else None
            if found is None or found.kind not in PROBLEMS:
                continue
            received, where = PROBLEMS[found.kind]
            yield Finding(
                call,
                f"NLLLoss expects log-probabilities but receives {received}; apply log_softmax or use CrossEntropyLoss",
                (Related(found.node, where, None if found.ctx is ctx else found.ctx),),
                _cross_entropy(ctx, call) if found.kind == "logits" else None,
            )


def _cross_entropy(ctx: ModuleContext, call: cst.Call) -> Fix | None:
    """``F.nll_loss(logits, y)`` -> ``F.cross_entropy(logits, y)``: the log_softmax it lacks, fused
    (unsafe: the loss values change, as the fix intends)."""
    qualname = knowledge.normalize(ctx.qualname(call.func) or "")
    if qualname != "torch.nn.functional.nll_loss" or not isinstance(call.func, cst.Attribute):
        return None
    return Fix(
        "Use `cross_entropy`, which applies log_softmax to the logits (review: the loss values change)",
        (replace(call.func.attr, "cross_entropy"),),
        safe=False,
    )
