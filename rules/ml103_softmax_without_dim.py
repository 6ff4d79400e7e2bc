"""ML103: softmax / log_softmax / nn.Softmax without an explicit ``dim``."""

from __future__ import annotations

from collections.abc import Iterator

from mllint.context import ModuleContext
from mllint.rule import Finding, Rule
from mllint.semantic import knowledge
from mllint.semantic.values import may_pass

#: PyTorch normalizations whose ``dim`` is optional, with the position ``dim`` takes when passed
#: positionally (the module classes take it first, the functions after the input)
IMPLICIT_DIM = {
    "torch.nn.functional.softmax": 1,
    "torch.nn.functional.log_softmax": 1,
    "torch.nn.functional.softmin": 1,
    "torch.nn.Softmax": 0,
    "torch.nn.LogSoftmax": 0,
    "torch.nn.Softmin": 0,
}


class SoftmaxWithoutDim(Rule):
    """## What it does
    Finds `F.softmax`, `F.log_softmax`, `F.softmin` and `nn.Softmax` / `nn.LogSoftmax` /
    `nn.Softmin` called without `dim`.

    ## Why is this bad?
    Without `dim` PyTorch guesses: dimension 0 for 0-, 1- and 3-dimensional inputs, dimension 1
    otherwise. For a batch of sequences (`batch, time, classes`) or a single unbatched image the
    guess normalizes across the batch or the wrong axis: every row no longer sums to one, the
    model still trains, and the predictions of one sample depend on the others in its batch. The
    only sign is a deprecation warning that is easy to miss.

    ## Example
    ```python
    probs = F.softmax(logits)
    self.act = nn.LogSoftmax()
    ```

    ## Use instead
    ```python
    probs = F.softmax(logits, dim=-1)
    self.act = nn.LogSoftmax(dim=1)
    ```
    """

    code = "ML103"
    name = "softmax-without-dim"
    summary = "softmax / log_softmax / nn.Softmax called without `dim`: the implicit axis can be the batch"
    severity = "warning"
    triggers = ("softmax", "Softmax", "softmin", "Softmin")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            qualname = knowledge.normalize(ctx.qualname(call.func) or "")
            position = IMPLICIT_DIM.get(qualname)
            if position is None or may_pass(call, "dim", position):
                continue
            function = qualname.rsplit(".", 1)[-1]
            yield Finding(call, f"`{function}` without `dim`: PyTorch picks the axis from the input's rank")
