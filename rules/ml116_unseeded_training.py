"""ML116: a training script that seeds no random number generator."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Rule
from mllint.semantic import knowledge
from mllint.semantic.names import called_name
from mllint.semantic.training import loop_trains

#: how deep calls into project functions are searched for a seeding call
MAX_DEPTH = 3
TRAINERS = ("lightning.Trainer", "lightning.pytorch.Trainer", "pytorch_lightning.Trainer")


class UnseededTraining(Rule):
    """## What it does
    Finds a training script (a module with an entry point, `if __name__ == "__main__":` or
    top-level code, that runs a training loop or a Lightning `Trainer.fit`) in which nothing
    seeds a random number generator: no `torch.manual_seed`, `np.random.seed`, `random.seed`,
    `seed_everything`, `set_seed`, nor any project function called from the module that does.

    This rule is off by default (`extend-select = ["ML116"]`): exploratory scripts need no seed.

    ## Why is this bad?
    Weight initialization, data shuffling, dropout masks and augmentations all draw from
    unseeded generators: two runs of the same script on the same data give different models and
    different metrics, so a change cannot be told apart from noise and a reported result cannot be
    reproduced.

    ## Example
    ```python
    if __name__ == "__main__":
        model = Net()
        for epoch in range(10):
            train_one_epoch(model, loader, optimizer)
    ```

    ## Use instead
    ```python
    if __name__ == "__main__":
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        model = Net()
        for epoch in range(10):
            train_one_epoch(model, loader, optimizer)
    ```
    or `lightning.seed_everything(0)` / `transformers.set_seed(0)`.
    """

    code = "ML116"
    name = "unseeded-training"
    summary = "Training script that seeds none of torch / numpy / random"
    severity = "info"
    default_enabled = False
    triggers = ("backward", "step", "fit")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        if not _is_script(ctx):
            return
        training = _first_training(ctx)
        if training is None or _seeds(ctx, ctx.calls, set(), 0):
            return
        yield Finding(
            training,
            "this training script seeds no random generator (torch, numpy, random): runs cannot be reproduced",
        )


def _is_script(ctx: ModuleContext) -> bool:
    """The module runs something when executed: a ``__main__`` guard or top-level loops."""
    for statement in ctx.tree.body:
        if isinstance(statement, (cst.For, cst.While)):
            return True
        if isinstance(statement, cst.If) and "__main__" in ctx.code(statement.test):
            return True
    return False


def _first_training(ctx: ModuleContext) -> cst.CSTNode | None:
    """The outermost loop around the module's first training loop, or a Lightning ``fit``."""
    for node in ctx.walk():
        if isinstance(node, (cst.For, cst.While)) and loop_trains(ctx, node):
            return _outermost_loop(ctx, node)
        if isinstance(node, cst.Call) and _is_lightning_fit(ctx, node):
            return node
    return None


def _outermost_loop(ctx: ModuleContext, loop: cst.For | cst.While) -> cst.For | cst.While:
    for ancestor in ctx.ancestors(loop):
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef)):
            break
        if isinstance(ancestor, (cst.For, cst.While)):
            loop = ancestor
    return loop


def _is_lightning_fit(ctx: ModuleContext, call: cst.Call) -> bool:
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "fit"):
        return False
    assert ctx.project is not None
    return any(knowledge.normalize(q) in TRAINERS for q in ctx.project.infer(ctx, call.func.value))


def _seeds(ctx: ModuleContext, calls: list[cst.Call], seen: set[str], depth: int) -> bool:
    """Whether any of ``calls`` seeds a generator, itself or in the project functions it calls."""
    from mllint.semantic.project import FunctionInfo

    assert ctx.project is not None
    for call in calls:
        # any API named after seeding counts (``torch.manual_seed``, ``set_seed``, ``rng.seed``):
        # the rule stays quiet when a seed may be set
        if "seed" in (called_name(call) or "").lower():
            return True
        if depth >= MAX_DEPTH:
            continue
        callee = ctx.project.resolve_callee(ctx, call)
        if isinstance(callee, FunctionInfo) and callee.qualname not in seen:
            seen.add(callee.qualname)
            inner = callee.ctx.scopes[callee.node].calls
            if _seeds(callee.ctx, inner, seen, depth + 1):
                return True
    return False
