"""ML109: a training DataLoader that visits the samples in the same order every epoch."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Related, Rule, replace, with_keyword
from mllint.semantic.data import is_iterable_dataset, is_loader_construction, iterated_loaders, loader_dataset
from mllint.semantic.sources import Source, value_sources
from mllint.semantic.training import loop_trains
from mllint.semantic.values import argument

MESSAGE = "training DataLoader without `shuffle=True` or a sampler: every epoch sees the samples in the same order"


class TrainLoaderNotShuffled(Rule):
    """## What it does
    Finds a `DataLoader` that a training loop iterates (a loop that runs `backward()` or an
    optimizer step, directly or in a called function), or that a Lightning `train_dataloader()`
    returns, built without `shuffle=True`, a `sampler` or a `batch_sampler`.

    It stays quiet on loaders of iterable datasets (an `IterableDataset`, a streaming library's
    dataset), which order their samples themselves, on loaders built with `**kwargs` or a
    `shuffle` value it cannot read, and on loaders that only evaluation loops iterate.

    ## Why is this bad?
    `DataLoader` does not shuffle by default. Datasets are usually stored in a meaningful order
    (by class, by file, by date, by source), so every batch holds correlated samples and every
    epoch repeats the same sequence: the gradient is biased batch by batch, the model drifts
    towards whatever came last, and validation numbers look worse (or unstable) for no visible
    reason.

    ## Example
    ```python
    train_loader = DataLoader(train_set, batch_size=64)
    for x, y in train_loader:
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    ```

    ## Use instead
    ```python
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    ```
    or `sampler=DistributedSampler(train_set)` under distributed training.
    """

    code = "ML109"
    name = "train-loader-not-shuffled"
    summary = "Training DataLoader built without `shuffle=True` or a sampler"
    severity = "warning"
    triggers = ("DataLoader", "loader")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        reported: set[int] = set()
        for use, note, loader in _training_loaders(ctx):
            if id(loader.expr) in reported or not _unshuffled(loader):
                continue
            reported.add(id(loader.expr))
            if loader.ctx is ctx:
                yield Finding(loader.expr, MESSAGE, (Related(use, note),), _shuffle(ctx, loader.expr))
            else:
                yield Finding(use, MESSAGE, (Related(loader.expr, "the DataLoader is built here", loader.ctx),))


def _training_loaders(ctx: ModuleContext) -> Iterator[tuple[cst.BaseExpression, str, Source]]:
    """Loaders used for training: where, how, and the loader's construction."""
    for node in ctx.walk():
        if isinstance(node, cst.For):
            loaders = iterated_loaders(ctx, node)
            if loaders and loop_trains(ctx, node):
                yield from ((node.iter, "a training loop iterates it here", loader) for loader in loaders)
    for function in ctx.functions:
        if function.name.value == "train_dataloader" and isinstance(
            ctx.enclosing(function, (cst.FunctionDef, cst.ClassDef)), cst.ClassDef
        ):
            for value in ctx.scopes[function].returns:
                for source in value_sources(ctx, value):
                    if is_loader_construction(source):
                        yield value, "Lightning trains on what `train_dataloader` returns", source


def _shuffle(ctx: ModuleContext, call: cst.BaseExpression) -> Fix | None:
    """``shuffle=True`` in place of a literal False, or added (unsafe: the order of the batches
    changes, and with it every run's numbers)."""
    assert isinstance(call, cst.Call)
    shuffle = argument(call, "shuffle", 2)
    if shuffle is not None:
        edit = replace(shuffle, "True")
    elif any(arg.star for arg in call.args):
        return None
    else:
        edit = replace(call, with_keyword(call, "shuffle", "True"))
    return Fix("Shuffle the training batches: `shuffle=True`", (edit,), safe=False)


def _unshuffled(loader: Source) -> bool:
    """Built with shuffling known to be off: no sampler, ``shuffle`` absent or a literal False."""
    call = loader.expr
    assert isinstance(call, cst.Call)
    if any(arg.star == "**" for arg in call.args):
        return False
    if argument(call, "sampler", 3) is not None or argument(call, "batch_sampler", 4) is not None:
        return False
    shuffle = argument(call, "shuffle", 2)
    if shuffle is not None and not (isinstance(shuffle, cst.Name) and shuffle.value in ("False", "None")):
        return False
    dataset = loader_dataset(call)
    return dataset is None or not is_iterable_dataset(loader.ctx, dataset)
