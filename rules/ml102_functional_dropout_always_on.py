"""ML102: functional dropout in a module without ``training=self.training``."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Rule, replace, with_keyword
from mllint.semantic import knowledge
from mllint.semantic.values import may_pass

#: functional dropouts, with the position of their ``training`` parameter (it defaults to True)
FUNCTIONAL_DROPOUTS = {
    "torch.nn.functional.dropout": 2,
    "torch.nn.functional.dropout1d": 2,
    "torch.nn.functional.dropout2d": 2,
    "torch.nn.functional.dropout3d": 2,
    "torch.nn.functional.alpha_dropout": 2,
    "torch.nn.functional.feature_alpha_dropout": 2,
}


class FunctionalDropoutAlwaysOn(Rule):
    """## What it does
    Finds `F.dropout` (and `dropout1d/2d/3d`, `alpha_dropout`, `feature_alpha_dropout`) called in
    a method of an `nn.Module` without a `training` argument.

    ## Why is this bad?
    Unlike `nn.Dropout`, the functional form does not follow the module's mode: its `training`
    parameter defaults to `True`. `model.eval()` changes nothing, so validation and inference
    still drop activations at random: metrics are noisy and pessimistic, and predictions differ
    from one call to the next.

    ## Example
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, p=0.5))
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.fc(F.dropout(x, p=0.5, training=self.training))
    ```
    or hold an `nn.Dropout(0.5)` submodule. Dropout meant to stay on at inference (Monte Carlo
    dropout) says so with `training=True`.
    """

    code = "ML102"
    name = "functional-dropout-always-on"
    summary = "F.dropout in a module without `training=self.training`: still active after model.eval()"
    severity = "error"
    triggers = ("dropout",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        assert ctx.project is not None
        for call in ctx.calls:
            qualname = knowledge.normalize(ctx.qualname(call.func) or "")
            position = FUNCTIONAL_DROPOUTS.get(qualname)
            if position is None or may_pass(call, "training", position):
                continue
            class_node = ctx.enclosing_class(call)
            if class_node is None:
                continue
            class_qualname = ctx.project.qualify(ctx, class_node)
            if not ctx.project.is_subclass(class_qualname, knowledge.TORCH_MODULE_BASES):
                continue
            function = qualname.rsplit(".", 1)[-1]
            yield Finding(
                call,
                f"`{function}` without `training=self.training` keeps dropping activations after `model.eval()`",
                fix=_follow_mode(ctx, call),
            )


def _follow_mode(ctx: ModuleContext, call: cst.Call) -> Fix | None:
    """Pass ``training=self.training`` (unsafe: Monte-Carlo dropout keeps it on at evaluation on purpose)."""
    if any(arg.star for arg in call.args):
        return None
    return Fix(
        "Pass `training=self.training` (review: Monte-Carlo dropout wants dropout on at evaluation)",
        (replace(call, with_keyword(call, "training", "self.training")),),
        safe=False,
    )
