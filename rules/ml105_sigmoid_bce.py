"""ML105: ``BCELoss`` fed sigmoid outputs instead of ``BCEWithLogitsLoss`` fed logits."""

from __future__ import annotations

from collections.abc import Iterator

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic.activations import normalization
from mllint.semantic.losses import computed_losses, loss_input

BCE_ON_PROBABILITIES = {"torch.nn.BCELoss", "torch.nn.functional.binary_cross_entropy"}


class SigmoidBCE(Rule):
    """## What it does
    Finds `nn.BCELoss` / `F.binary_cross_entropy` computed on the output of a sigmoid, applied
    inline, through a variable, or at the end of a model's `forward` (in this file or another).

    ## Why is this bad?
    A float32 sigmoid rounds to exactly 0 or 1 for logits beyond about ±17; `BCELoss` then takes
    `log(0)`, which PyTorch clamps to -100: the loss saturates, the gradient through the sigmoid
    vanishes, and confidently wrong predictions stop being corrected. Under mixed precision
    `BCELoss` refuses to run at all. `BCEWithLogitsLoss` fuses the sigmoid into the loss with the
    log-sum-exp trick, stable for any logit, and accepts `pos_weight`.

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return torch.sigmoid(self.fc(x))

    loss = nn.BCELoss()(model(x), y)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.fc(x)  # logits; apply torch.sigmoid where probabilities are needed

    loss = nn.BCEWithLogitsLoss()(model(x), y)
    ```
    """

    code = "ML105"
    name = "sigmoid-bce"
    summary = "BCELoss on sigmoid outputs: numerically unstable; use BCEWithLogitsLoss on logits"
    severity = "warning"
    triggers = ("BCELoss", "binary_cross_entropy", "loss", "criterion")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            if not computed_losses(ctx, call) & BCE_ON_PROBABILITIES:
                continue
            argument = loss_input(call)
            found = normalization(ctx, argument) if argument is not None else None
            if found is None or found.kind != "sigmoid":
                continue
            note = Related(found.node, "sigmoid applied here", None if found.ctx is ctx else found.ctx)
            yield Finding(
                call,
                "binary cross-entropy on sigmoid outputs saturates and loses gradient; "
                "use BCEWithLogitsLoss on the logits",
                (note,),
            )
