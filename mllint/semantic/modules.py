"""Whether a value is a PyTorch module (an ``nn.Module`` instance): a layer of ``torch.nn``, a
project class deriving from one, or a model built by a model library's factory."""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge

#: factories that return PyTorch models
MODEL_FACTORY_PREFIXES = ("torchvision.models.", "timm.create_model", "timm.models.create_model")
#: not modules, though spelled like ``torch.nn`` classes
NOT_MODULES = {"torch.nn.Parameter", "torch.nn.UninitializedParameter", "torch.nn.Buffer"}


def is_module_class(ctx: ModuleContext, qualname: str) -> bool:
    """A class (or factory) whose instances are PyTorch modules."""
    assert ctx.project is not None
    if knowledge.normalize(qualname).startswith(MODEL_FACTORY_PREFIXES):
        return True
    if not _is_torch_layer(qualname) and ctx.project.class_summary(qualname) is None:
        return False  # an outside name this table does not know
    return any(_is_torch_layer(ancestor) for ancestor in ctx.project.mro(qualname))


def _is_torch_layer(qualname: str) -> bool:
    """``torch.nn.Module`` or a class of ``torch.nn`` (``nn.Linear``, ``nn.Sequential``...)."""
    qualname = knowledge.normalize(qualname)
    if qualname in knowledge.TORCH_MODULE_BASES:
        return True
    if qualname in NOT_MODULES or not qualname.startswith("torch.nn.") or qualname.startswith("torch.nn.functional."):
        return False
    return qualname.rsplit(".", 1)[-1][:1].isupper()


def module_classes(ctx: ModuleContext, expr: cst.BaseExpression) -> set[str]:
    """The PyTorch module classes among the values ``expr`` may hold."""
    assert ctx.project is not None
    return {qualname for qualname in ctx.project.infer(ctx, expr) if is_module_class(ctx, qualname)}
