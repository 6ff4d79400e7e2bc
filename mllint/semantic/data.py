"""Data pipelines: which DataLoader a loop iterates, what dataset a loader reads."""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.sources import Source, value_sources
from mllint.semantic.values import argument


def iterated_loaders(ctx: ModuleContext, loop: cst.For) -> list[Source]:
    """The ``DataLoader(...)`` constructions whose loader the loop iterates (possibly through
    ``enumerate`` / ``tqdm``, variables, attributes, parameters and return values)."""
    return [source for source in value_sources(ctx, loop.iter) if is_loader_construction(source)]


def is_loader_construction(source: Source) -> bool:
    expr = source.expr
    return isinstance(expr, cst.Call) and knowledge.is_data_loader(
        knowledge.normalize(source.ctx.qualname(expr.func) or "")
    )


def loader_dataset(call: cst.Call) -> cst.BaseExpression | None:
    return argument(call, "dataset", 0)


def is_iterable_dataset(ctx: ModuleContext, dataset: cst.BaseExpression) -> bool:
    """The dataset is an iterable stream (an ``IterableDataset`` subclass, a class defining
    ``__iter__`` and no ``__getitem__``, a streaming library's dataset): its order is its own."""
    assert ctx.project is not None
    for qualname in ctx.project.infer(ctx, dataset):
        if any(knowledge.is_streaming_dataset(knowledge.normalize(q)) for q in ctx.project.mro(qualname)):
            return True
        iterates = ctx.project.method(qualname, "__iter__") is not None
        if iterates and ctx.project.method(qualname, "__getitem__") is None:
            return True
    return False
