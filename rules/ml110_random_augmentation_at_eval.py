"""ML110: random training augmentations in the data pipeline of an evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.data import iterated_loaders, loader_dataset
from mllint.semantic.sources import Source, value_sources
from mllint.semantic.training import loop_trains, without_grad
from mllint.semantic.values import argument

EVAL_SPLITS = {"val", "valid", "validation", "test", "eval", "dev"}


class RandomAugmentationAtEval(Rule):
    """## What it does
    Finds random augmentations (`RandomCrop`, `RandomResizedCrop`, `RandomHorizontalFlip`,
    `ColorJitter`, `RandAugment`, ...) in the transform of a dataset used for evaluation: one built
    with `train=False` or a validation / test `split`, or one whose loader is iterated under
    `torch.no_grad()` / `torch.inference_mode()` by a loop that does not train.

    It follows the transform through variables and helper functions, and stays quiet when the
    transform may be one of several pipelines (`get_transform(train)` returning a random or a
    deterministic pipeline): only a pipeline that is random on every path is reported.

    ## Why is this bad?
    Evaluation should measure the model, not the luck of the draw: random crops and flips at
    test time make the metric noisy (two evaluations of the same checkpoint disagree) and biased
    (the model is scored on distorted images it would never see in use), and model selection on
    such a metric picks checkpoints by chance.

    ## Example
    ```python
    test_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.ToTensor()])
    test_set = datasets.CIFAR10("data", train=False, transform=test_tf)
    ```

    ## Use instead
    ```python
    test_tf = transforms.Compose([transforms.ToTensor()])
    test_set = datasets.CIFAR10("data", train=False, transform=test_tf)
    ```
    Use deterministic resizing and center crops for evaluation; test-time augmentation, when
    wanted, averages several fixed views explicitly.
    """

    code = "ML110"
    name = "random-augmentation-at-eval"
    summary = "Random training augmentation in a validation / test data pipeline"
    severity = "warning"
    triggers = ("Random", "ColorJitter", "Augment", "AugMix")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        reported: set[int] = set()
        for dataset, why in _evaluation_datasets(ctx):
            transform = _transform_argument(dataset)
            if transform is None:
                continue
            for augmentation in _random_augmentations(dataset.ctx, transform):
                if id(augmentation.expr) in reported:
                    continue
                reported.add(id(augmentation.expr))
                name = (augmentation.ctx.qualname(augmentation.expr.func) or "").rsplit(".", 1)[-1]  # type: ignore[attr-defined]
                message = f"random augmentation `{name}` in an evaluation pipeline: the metric depends on the draw"
                if augmentation.ctx is ctx:
                    yield Finding(augmentation.expr, message, (Related(dataset.expr, why, dataset.ctx),))
                elif dataset.ctx is ctx:
                    yield Finding(dataset.expr, message, (Related(augmentation.expr, "drawn here", augmentation.ctx),))


def _evaluation_datasets(ctx: ModuleContext) -> Iterator[tuple[Source, str]]:
    """Dataset constructions of evaluation data, with the reason they count as such."""
    for call in ctx.calls:
        if _split_of(call) == "eval":
            yield Source(ctx, call), "the dataset is a validation / test split"
    iterating = [(loop, iterated_loaders(ctx, loop)) for loop in _loops(ctx)]
    loops = [(loop, loaders, loop_trains(ctx, loop)) for loop, loaders in iterating if loaders]
    training = {id(loader.expr) for _, loaders, trains in loops if trains for loader in loaders}
    for loop, loaders, trains in loops:
        if trains or not without_grad(ctx, loop):
            continue
        for loader in loaders:
            dataset = loader_dataset(loader.expr)  # type: ignore[arg-type]
            if id(loader.expr) in training or dataset is None:
                continue
            for source in value_sources(loader.ctx, dataset):
                if isinstance(source.expr, cst.Call) and _split_of(source.expr) != "train":
                    yield source, "an evaluation loop (under no_grad) iterates this dataset"


def _loops(ctx: ModuleContext) -> Iterator[cst.For]:
    return (node for node in ctx.walk() if isinstance(node, cst.For))


def _split_of(call: cst.Call) -> str | None:
    """ "train" / "eval" when a dataset constructor says which split it reads (``train=False``,
    ``split="test"``), else None."""
    train = argument(call, "train")
    if isinstance(train, cst.Name) and train.value in ("True", "False"):
        return "train" if train.value == "True" else "eval"
    split = argument(call, "split")
    if isinstance(split, cst.SimpleString):
        value = str(split.evaluated_value).lower()
        return "eval" if value in EVAL_SPLITS else "train" if value == "train" else None
    return None


def _transform_argument(dataset: Source) -> cst.BaseExpression | None:
    call = dataset.expr
    assert isinstance(call, cst.Call)
    for keyword in ("transform", "transforms"):
        value = argument(call, keyword)
        if value is not None:
            return value
    qualname = knowledge.normalize(dataset.ctx.qualname(call.func) or "")
    position = knowledge.TRANSFORM_POSITIONS.get(qualname)
    if position is None:
        position = _project_transform_position(dataset.ctx, call)
    return argument(call, "transform", position) if position is not None else None


def _project_transform_position(ctx: ModuleContext, call: cst.Call) -> int | None:
    """The position of a ``transform`` parameter of a project dataset class's ``__init__``."""
    from mllint.semantic.project import ClassInfo

    assert ctx.project is not None
    cls = ctx.project.resolve_callee(ctx, call)
    init = ctx.project.method(cls.qualname, "__init__") if isinstance(cls, ClassInfo) else None
    if init is None:
        return None
    names = [p.name.value for p in [*init.node.params.posonly_params, *init.node.params.params]][1:]
    return next((names.index(name) for name in ("transform", "transforms") if name in names), None)


def _random_augmentations(ctx: ModuleContext, transform: cst.BaseExpression) -> list[Source]:
    """The random augmentations of a transform that is random on every path it may come from;
    empty when any alternative is deterministic or cannot be read."""
    found: list[Source] = []
    for source in value_sources(ctx, transform):
        augmentations = _augmentations_of(source)
        if not augmentations:
            return []
        found.extend(augmentations)
    return found


def _augmentations_of(source: Source) -> list[Source]:
    expr = source.expr
    if not isinstance(expr, cst.Call):
        return []
    if _is_random(source):
        return [source]
    if not knowledge.is_transform_pipeline(knowledge.normalize(source.ctx.qualname(expr.func) or "")) or not expr.args:
        return []
    found = []
    for steps in value_sources(source.ctx, expr.args[0].value):
        if not isinstance(steps.expr, (cst.List, cst.Tuple)):
            return []
        for element in steps.expr.elements:
            for step in value_sources(steps.ctx, element.value):
                if isinstance(step.expr, cst.Call) and _is_random(step):
                    found.append(step)
    return found


def _is_random(step: Source) -> bool:
    return knowledge.is_random_augmentation(knowledge.normalize(step.ctx.qualname(step.expr.func) or ""))  # type: ignore[attr-defined]
