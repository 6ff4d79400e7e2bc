"""ML121: a tensor method that returns a new tensor, used as a statement."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Rule
from mllint.semantic.names import dotted_name
from mllint.semantic.tensors import is_tensor

#: tensor methods that leave their receiver unchanged and return the result (``x.add_()`` is in-place)
OUT_OF_PLACE = {
    "to", "cuda", "cpu", "float", "half", "double", "bfloat16", "long", "int", "bool", "byte", "type",
    "type_as", "view", "view_as", "reshape", "permute", "transpose", "t", "flatten", "squeeze", "unsqueeze",
    "expand", "expand_as", "repeat", "contiguous", "clone", "detach", "clamp", "clip", "abs", "neg", "exp",
    "log", "sqrt", "pow", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "add", "sub", "mul", "div",
    "masked_fill", "index_select", "gather", "roll", "flip", "narrow",
}  # fmt: skip
#: methods no module, array or builtin has: a statement calling one discards a tensor, whatever the receiver
TENSOR_ONLY = {"unsqueeze", "contiguous", "masked_fill", "type_as", "view_as", "expand_as"}


class DiscardedTensorResult(Rule):
    """## What it does
    Finds a tensor method that returns a new tensor (`x.to(device)`, `x.float()`, `x.clamp(0, 1)`,
    `x.unsqueeze(0)`, `x.detach()`) written as a statement of its own, its result never used.

    ## Why is this bad?
    These methods do not change the tensor they are called on. The statement does nothing: the tensor
    stays on the CPU, keeps its dtype, is never clamped. The program then runs on with the old value:
    a device-mismatch error far away at best, silently wrong numbers at worst. `nn.Module.to()` and
    `.cuda()` *are* in place, which is how the habit forms.

    ## Example
    ```python
    t, weights = sampler.sample(batch.shape[0])
    t.to(batch.device)
    weights.to(batch.device)
    ```

    ## Use instead
    ```python
    t, weights = sampler.sample(batch.shape[0])
    t = t.to(batch.device)
    weights = weights.to(batch.device)
    ```
    Modules (`model.to(device)`) and in-place methods (`x.clamp_(0, 1)`) are not reported; neither is
    a receiver not known to be a tensor, unless the method exists on tensors only.
    """

    code = "ML121"
    name = "discarded-tensor-result"
    summary = "Out-of-place tensor method used as a statement: its result is thrown away"
    severity = "error"
    triggers = (re.compile(r"\.(?:" + "|".join(map(re.escape, sorted(OUT_OF_PLACE))) + r")\("),)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            if not isinstance(ctx.parent(call), cst.Expr) or not isinstance(call.func, cst.Attribute):
                continue
            method = call.func.attr.value
            if method in OUT_OF_PLACE and _discards_a_tensor(ctx, call.func.value, method):
                receiver = dotted_name(call.func.value)
                hint = f" (`{receiver} = {receiver}.{method}(...)`)" if receiver else ""
                yield Finding(
                    call,
                    f"`{method}()` returns a new tensor and leaves the one it is called on unchanged: "
                    f"the result is thrown away; assign it{hint}",
                )


def _discards_a_tensor(ctx: ModuleContext, receiver: cst.BaseExpression, method: str) -> bool:
    if is_tensor(ctx, receiver):
        return True
    # a project class may define a method of the same name with a side effect
    project_defines = ctx.project is not None and ctx.project.defines(method)
    return method in TENSOR_ONLY and not project_defines
