"""Building a model and example inputs for it, in the child process (torch is imported here)."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mllint.confirm import describe_error

BATCH = 2
SEQUENCE = 16
#: spatial sizes tried for convolutions, by dimensionality (common image/sequence sizes first)
SPATIAL = {1: (64, 32, 128), 2: (32, 64, 28, 224), 3: (16, 8, 32)}
#: layers whose shapes are looked at, in registration order
MAX_LAYERS_LOOKED_AT = 3


class BuildError(Exception):
    """The model or its inputs cannot be made: the finding stays unconfirmed, with this reason."""


FACTORY_HINT = (
    'name a factory in pyproject.toml: [tool.mllint.confirm] factories = {{"{qualname}" = "module:function"}}, '
    "a function returning the model and example inputs"
)


@dataclass
class Built:
    model: nn.Module
    #: how it was built, for the evidence
    how: str
    #: inputs the factory returned; None: inferred on demand
    given_inputs: tuple[Any, ...] | None = None
    _inputs: tuple[Any, ...] | None = field(default=None, repr=False)

    def inputs(self) -> tuple[Any, ...]:
        """Example positional inputs that the model's forward accepts (found by trying)."""
        if self._inputs is None:
            self._inputs = self.given_inputs if self.given_inputs is not None else find_inputs(self.model)
        return self._inputs


def build(cls: type, qualname: str, constructions: tuple[str, ...], factory: str | None) -> Built:
    """A factory named in the settings; else the project's own literal constructor calls; else no
    arguments, when every parameter of the constructor has a default."""
    name = cls.__name__
    if factory is not None:
        return _from_factory(factory)
    errors = []
    for construction in constructions:
        args, kwargs = ast.literal_eval(construction)
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        try:
            return Built(_module(cls(*args, **kwargs), name), f"{name}({shown}), as the project builds it")
        except (Exception, SystemExit) as error:  # noqa: BLE001 - user code: any failure is a reason
            errors.append(f"`{name}({shown})` raised {describe_error(error)}")
    required = _required_parameters(cls.__init__)
    if not required and repr(((), {})) not in constructions:
        try:
            return Built(_module(cls(), name), f"{name}()")
        except (Exception, SystemExit) as error:  # noqa: BLE001 - user code
            errors.append(f"`{name}()` raised {describe_error(error)}")
    if errors:
        raise BuildError("; ".join(errors))
    needed = ", ".join(required)
    raise BuildError(f"`{name}` needs constructor arguments ({needed}): {FACTORY_HINT.format(qualname=qualname)}")


def _from_factory(factory: str) -> Built:
    module_name, _, function_name = factory.partition(":")
    function = importlib.import_module(module_name)
    for part in function_name.split("."):
        function = getattr(function, part)
    made = function()
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module):
        model, inputs = made
        inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        return Built(model, f"factory {factory}", inputs)
    return Built(_module(made, factory), f"factory {factory}")


def _module(made: object, name: str) -> nn.Module:
    if not isinstance(made, nn.Module):
        raise BuildError(f"`{name}` did not produce a torch.nn.Module but {type(made).__name__}")
    return made


def _required_parameters(function: Callable[..., Any]) -> list[str]:
    try:
        parameters = list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def find_inputs(model: nn.Module) -> tuple[Any, ...]:
    """Inputs shaped for the model's first layers (batch of 2); the first that a forward accepts."""
    required = _required_parameters(type(model).forward)
    if len(required) > 1:
        raise BuildError(
            f"`forward` takes {len(required)} inputs ({', '.join(required)}): "
            + FACTORY_HINT.format(qualname=type(model).__qualname__)
        )
    tried = 0
    last_error = "the model has no Linear, convolution, embedding or recurrent layer to shape an input for"
    model.eval()
    for candidate in _candidates(model):
        tried += 1
        try:
            with torch.no_grad():
                model(candidate)
        except Exception as error:  # noqa: BLE001 - a wrong guess of the shape
            last_error = f"{type(error).__name__}: {error}".splitlines()[0]
            continue
        return (candidate,)
    raise BuildError(f"no example input worked ({tried} tried; last: {last_error})")


def _candidates(model: nn.Module) -> Iterator[torch.Tensor]:
    looked_at = 0
    for layer in model.modules():
        if looked_at == MAX_LAYERS_LOOKED_AT:
            return
        shaped = list(_shaped_for(layer))
        looked_at += bool(shaped)
        yield from shaped


def _shaped_for(layer: nn.Module) -> Iterator[torch.Tensor]:
    if isinstance(layer, nn.modules.lazy.LazyModuleMixin):
        return
    if isinstance(layer, nn.Embedding):
        yield torch.randint(0, layer.num_embeddings, (BATCH, SEQUENCE))
    elif isinstance(layer, nn.Linear):
        yield torch.randn(BATCH, layer.in_features)
    elif isinstance(layer, nn.modules.conv._ConvNd):
        dimensions = len(layer.kernel_size)
        sizes = SPATIAL.get(dimensions, ())
        if isinstance(layer, nn.modules.conv._ConvTransposeNd):
            sizes = (1, *sizes)  # a generator starts from a latent vector
        for size in sizes:
            yield torch.randn(BATCH, layer.in_channels, *([size] * dimensions))
    elif isinstance(layer, nn.RNNBase):
        shape = (BATCH, SEQUENCE) if layer.batch_first else (SEQUENCE, BATCH)
        yield torch.randn(*shape, layer.input_size)
    elif isinstance(layer, nn.MultiheadAttention):
        yield torch.randn(BATCH, SEQUENCE, layer.embed_dim)
