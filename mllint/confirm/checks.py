"""The dynamic checks: each runs a built model and says whether a finding's claim holds.

A check answers with a status (``confirmed`` / ``refuted`` / ``unconfirmed``), the method it used
and the evidence; each is named by the ``dynamic_check`` of the rules it decides.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from mllint.confirm.build import Built

NORMALIZATIONS = {"softmax", "log_softmax", "sigmoid"}
NORMALIZING_MODULES = {
    nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax",
    nn.Sigmoid: "sigmoid",
    nn.Softmax2d: "softmax",
}
#: operations that keep the values of their input, and so its normalization
SHAPE_OPERATIONS = {
    "view", "reshape", "squeeze", "unsqueeze", "contiguous", "float", "double", "half", "to", "cpu",
    "permute", "transpose", "flatten", "clone", "type_as", "view_as", "expand", "expand_as", "getitem",
    "__getitem__", "clamp", "clamp_",
}  # fmt: skip
MAX_NAMED = 6


@dataclass(frozen=True)
class Outcome:
    status: str
    method: str
    evidence: str


def output_normalization(built: Built, without_grad: bool) -> Outcome:
    """ML001's claim: the model's output is already normalized (softmax / log_softmax / sigmoid)."""
    model = built.model
    try:
        found = _fx_output_normalizations(model)
        method = "torch.fx"
    except Exception:  # noqa: BLE001 - data-dependent control flow: watch a real call instead
        found = _recorded_output_normalizations(model, built.inputs())
        method = "forward hooks"
    normalized = [(position, kind) for position, kind in found if kind in NORMALIZATIONS]
    if normalized:
        where = ", ".join(kind if position == "output" else f"{kind} ({position})" for position, kind in normalized)
        return Outcome("confirmed", method, f"{built.how}: the model's output comes from {where}")
    producers = ", ".join(
        (kind or "an input") if position == "output" else f"{kind or 'an input'} ({position})"
        for position, kind in found
    )
    return Outcome(
        "refuted", method, f"{built.how}: the output is not normalized; it comes from {producers or 'no operation'}"
    )


def _fx_output_normalizations(model: nn.Module) -> list[tuple[str, str | None]]:
    graph_module = torch.fx.symbolic_trace(model)
    modules = dict(graph_module.named_modules())
    output = next(node for node in graph_module.graph.nodes if node.op == "output")
    found = []
    for position, node in _flatten("output", output.args[0]):
        while isinstance(node, torch.fx.Node):
            kind = _fx_kind(node, modules)
            if kind not in SHAPE_OPERATIONS or not node.args:
                break
            node = node.args[0]
        found.append((position, _fx_kind(node, modules) if isinstance(node, torch.fx.Node) else None))
    return found


def _fx_kind(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str | None:
    if node.op == "call_module":
        module = modules.get(str(node.target))
        kind = next((kind for cls, kind in NORMALIZING_MODULES.items() if isinstance(module, cls)), None)
        return kind or f"{node.target} ({type(module).__name__})"
    if node.op == "call_method":
        return str(node.target)
    if node.op == "call_function":
        return "getitem" if node.target is operator.getitem else getattr(node.target, "__name__", str(node.target))
    return None


def _flatten(position: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            yield from _flatten(f"{position}[{index}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{position}[{key!r}]", item)
    else:
        yield position, value


class _Recorder(TorchFunctionMode):
    """Which torch operation produced each tensor of a real call (and from which input)."""

    def __init__(self) -> None:
        super().__init__()
        self.producers: dict[int, tuple[str, Any, Any]] = {}

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if isinstance(result, torch.Tensor) and not name.startswith("__get"):
            source = args[0] if args else None
            # the result and its source are held so that their ids stay unique during the call
            self.record(result, name, source)
        return result

    def record(self, tensor: torch.Tensor, name: str, source: Any) -> None:
        self.producers[id(tensor)] = (name, source, tensor)


def _recorded_output_normalizations(model: nn.Module, inputs: tuple[Any, ...]) -> list[tuple[str, str | None]]:
    recorder = _Recorder()
    hooks = [
        module.register_forward_hook(lambda m, _args, out, kind=kind: recorder.record(out, kind, None))
        for module in model.modules()
        for cls, kind in NORMALIZING_MODULES.items()
        if isinstance(module, cls)
    ]
    model.eval()
    try:
        with torch.no_grad(), recorder:
            output = model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    found = []
    for position, tensor in _flatten("output", output):
        kind = None
        while isinstance(tensor, torch.Tensor) and id(tensor) in recorder.producers:
            kind, tensor, _ = recorder.producers[id(tensor)]
            if kind not in SHAPE_OPERATIONS:
                break
        found.append((position, kind))
    return found


def mode_dependence(built: Built, without_grad: bool) -> Outcome:
    """ML004's claim: the model computes something else in train mode than in eval mode."""
    model, inputs = built.model, built.inputs()
    method = "forward in train() and in eval()"
    torch.manual_seed(0)
    with torch.no_grad():
        model.train()
        in_train = _tensors(model(*inputs))
        model.eval()
        in_eval = _tensors(model(*inputs))
    layers = [f"{name} ({type(module).__name__})" for name, module in model.named_modules() if _mode_dependent(module)]
    named = _names(layers)
    difference = max(
        ((a.double() - b.double()).abs().max().item() for a, b in zip(in_train, in_eval, strict=False) if a.numel()),
        default=0.0,
    )
    if difference > 1e-6 or len(in_train) != len(in_eval):
        because = f"; mode-dependent layers: {named}" if layers else ""
        return Outcome(
            "confirmed",
            method,
            f"{built.how}: outputs differ between train() and eval() (max |difference| {difference:.3g}){because}",
        )
    if not layers:
        return Outcome(
            "refuted",
            method,
            f"{built.how}: harmless: this model has no active dropout or batch-norm (outputs identical)",
        )
    return Outcome("unconfirmed", method, f"{built.how}: outputs identical on this input despite {named}")


def _mode_dependent(module: nn.Module) -> bool:
    """Batch-norm-like layers, and dropout that drops something (``Dropout(0.0)`` is inert)."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    return isinstance(module, nn.modules.batchnorm._NormBase)


def gradient_reach(built: Built, without_grad: bool) -> Outcome:
    """ML006's claim: the loss, computed as the training code computes it, trains no parameter
    (or not all of them)."""
    model, inputs = built.model, built.inputs()
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    if not trainable:
        return Outcome("unconfirmed", "backward", f"{built.how}: the model has no trainable parameters")
    how = f"{built.how}, forward and loss under no_grad as the training code runs them" if without_grad else built.how
    model.train()
    model.zero_grad(set_to_none=True)
    with torch.no_grad() if without_grad else contextlib.nullcontext():
        outputs = [t for t in _tensors(model(*inputs)) if t.is_floating_point()]
        if not outputs:
            return Outcome("unconfirmed", "backward", f"{built.how}: the model returns no floating-point tensor")
        loss = sum(t.float().mean() for t in outputs)
    if not loss.requires_grad:
        loss = loss.detach().requires_grad_(True)  # what the training code does to make backward() run
    loss.backward()
    missing = [name for name, value in model.named_parameters() if value.requires_grad and value.grad is None]
    method = "backward"
    if missing:
        return Outcome(
            "confirmed",
            method,
            f"{how}: no gradient reaches {len(missing)} of {len(trainable)} trainable parameters: " + _names(missing),
        )
    return Outcome("refuted", method, f"{how}: gradients reach all {len(trainable)} trainable parameters of the model")


def _tensors(value: Any) -> list[torch.Tensor]:
    return [item for _, item in _flatten("", value) if isinstance(item, torch.Tensor)]


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


CHECKS: dict[str, Callable[[Built, bool], Outcome]] = {
    "output-normalization": output_normalization,
    "mode-dependence": mode_dependence,
    "gradient-reach": gradient_reach,
}
