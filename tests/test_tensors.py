"""The semantic layer's tensor questions, on real parses with a real project index."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst

from mllint.context import ModuleContext
from mllint.runner import load_context, make_context
from mllint.semantic.project import ProjectIndex
from mllint.semantic.tensors import is_tensor
from mllint.semantic.training import backward_operand, is_torch_model

SOURCE = textwrap.dedent(
    """\
    import numpy as np
    import torch as th
    from torch import nn


    def sample(n):
        indices = th.from_numpy(np.arange(n)).long()
        return indices, th.ones(n)


    def use(batch, loader):
        t, w = sample(4)
        scaled = (w * 2)[0]
        layer = nn.Linear(2, 2).to("cpu")
        array = np.zeros(3)
        scaler = th.amp.GradScaler()
        scaler.scale(t).backward()
        return t, w, scaled, layer, array, batch, loader
    """
)


def context() -> ModuleContext:
    project = ProjectIndex(load_context)
    project.register("sample_module", Path("sample_module.py"), SOURCE)
    ctx = project.load("sample_module")
    assert ctx is not None
    return ctx


def returned(ctx: ModuleContext) -> dict[str, cst.BaseExpression]:
    function = next(f for f in ctx.functions if f.name.value == "use")
    value = ctx.scopes[function].returns[0]
    assert isinstance(value, cst.Tuple)
    return {ctx.code(element.value): element.value for element in value.elements}


def test_tensors_known_from_how_they_are_made() -> None:
    ctx = context()
    values = returned(ctx)
    assert is_tensor(ctx, values["t"])  # unpacked from a project function's returned tuple
    assert is_tensor(ctx, values["w"])
    assert is_tensor(ctx, values["scaled"])  # arithmetic and indexing keep it a tensor


def test_modules_arrays_and_parameters_are_not_tensors() -> None:
    ctx = context()
    values = returned(ctx)
    for name in ("layer", "array", "batch", "loader"):
        assert not is_tensor(ctx, values[name]), name


def test_backward_operand_looks_through_the_scaler() -> None:
    ctx = context()
    backward = next(c for c in ctx.calls if isinstance(c.func, cst.Attribute) and c.func.attr.value == "backward")
    operand = backward_operand(ctx, backward)
    assert isinstance(operand, cst.Name) and operand.value == "t"


def test_torch_models_told_from_other_callables() -> None:
    source = "from torch import nn\nnet = nn.Conv2d(1, 1, 3)\nloss = nn.MSELoss()\npair = (net, loss, len)\n"
    ctx = make_context(Path("m.py"), source, "m")
    ProjectIndex(load_context).add(ctx)
    pair = ctx.scopes[None].names["pair"][0].value
    assert isinstance(pair, cst.Tuple)
    net, loss, builtin = (element.value for element in pair.elements)
    assert is_torch_model(ctx, net)
    assert not is_torch_model(ctx, loss)
    assert not is_torch_model(ctx, builtin)
