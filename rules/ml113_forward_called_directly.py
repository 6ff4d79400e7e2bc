"""ML113: ``model.forward(x)`` instead of ``model(x)``."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Rule, replace
from mllint.semantic.modules import module_classes


class ForwardCalledDirectly(Rule):
    """## What it does
    Finds `model.forward(...)` called on a PyTorch module instance (a `torch.nn` layer, a model
    class of the project, a torchvision or timm model) instead of `model(...)`.

    ## Why is this bad?
    `nn.Module.__call__` does more than call `forward`: it runs forward pre-hooks and hooks
    (registered by the user, by pruning, by quantization observers, by activation checkpointing
    and profiling tools) and lets wrappers such as `DistributedDataParallel` synchronize. Calling
    `forward` directly skips all of it without any error: hooks silently record nothing, and a
    DDP model's gradients can go unsynchronized.

    ## Example
    ```python
    output = model.forward(tokens)
    ```

    ## Use instead
    ```python
    output = model(tokens)
    ```
    Inside a module's own methods, `super().forward(x)` and `self.forward(x)` are the class's
    design and are not reported.
    """

    code = "ML113"
    name = "forward-called-directly"
    summary = "`model.forward(x)` instead of `model(x)`: forward hooks (and DDP's) are skipped"
    severity = "warning"
    triggers = (".forward(",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            func = call.func
            if not isinstance(func, cst.Attribute) or func.attr.value != "forward":
                continue
            receiver = func.value
            # ``self.forward(...)`` is the class's own design (a custom ``__call__``, a wrapper
            # redirecting its calls); ``super().forward(...)`` extends the parent's computation
            if _is_super(receiver) or (isinstance(receiver, cst.Name) and receiver.value == "self"):
                continue
            if module_classes(ctx, receiver):
                module = _shown(ctx.code(receiver))
                yield Finding(
                    call,
                    f"`{module}.forward(...)` skips the module's hooks (and DDP's): call `{module}(...)`",
                    fix=Fix(
                        "Call the module instead of its `forward` (review: hooks registered on it now run)",
                        (replace(func, receiver),),
                        safe=False,
                    ),
                )


def _shown(code: str, most: int = 40) -> str:
    """An expression as a message shows it: on one line, long ones cut short."""
    code = " ".join(code.split())
    return code if len(code) <= most else code[: most - 3] + "..."


def _is_super(receiver: cst.BaseExpression) -> bool:
    return isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Name) and receiver.func.value == "super"
