"""ML004: a model run for evaluation while still in train mode, or train mode never restored."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, ModelSubject, Related, Rule, insert_after, insert_before, replace
from mllint.semantic import knowledge
from mllint.semantic.cfg import ENTRY, ControlFlowGraph, Node
from mllint.semantic.names import dotted_name
from mllint.semantic.project import FunctionInfo
from mllint.semantic.subjects import called_model
from mllint.semantic.training import (
    Event,
    Kind,
    graph_events,
    has_mode_dependent_layers,
    is_no_grad,
    last_mode,
    without_grad,
)

EVALUATION_NAME = re.compile(
    r"^_*(evaluate|eval|validate|validation|valid|val|test|predict|inference|infer|score)(_|$)"
    r"|_(eval|evaluate|validate|validation|val|test|predict|inference)$"
)


class MissingEval(Rule):
    """## What it does
    Finds a model run for validation, testing or inference while it is still in train mode: no
    `model.eval()` on the way to the evaluation (in the function or in its callers), an explicit
    `model.train()` before predictions, or an evaluation inside the training loop that switches to
    eval mode and never switches back before the next training step.

    ## Why is this bad?
    In train mode dropout still drops and batch-norm uses (and updates) batch statistics: reported
    accuracy is noisy and too low, predictions change from run to run. The reverse, training on in eval
    mode after a mid-epoch validation, silently trains without dropout and with frozen batch-norm
    statistics. Nothing fails either way.

    ## Example
    ```python
    def evaluate(model, loader):
        with torch.no_grad():
            return sum(metric(model(x), y) for x, y in loader)
    ```

    ## Use instead
    ```python
    def evaluate(model, loader):
        model.eval()
        with torch.no_grad():
            score = sum(metric(model(x), y) for x, y in loader)
        model.train()
        return score
    ```
    Models without dropout or batch-norm layers (known from their definition in the project) are not
    reported.
    """

    code = "ML004"
    name = "missing-eval"
    summary = "Model evaluated in train mode, or train mode not restored after evaluation"
    dynamic_check = "mode-dependence"
    triggers = (
        ".eval(",
        ".train(",
        "no_grad",
        "inference_mode",
        "set_training_mode",
        "def eval",
        "def val",
        "def test",
        "def predict",
        "def infer",
    )

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for owner in [None, *ctx.functions]:
            evaluating = owner is not None and _is_evaluation_function(ctx, owner)
            if not evaluating and not _may_concern_modes(ctx, owner):
                continue
            cfg = ctx.cfg(owner)
            evaluated = _evaluated_calls(ctx, owner, evaluating)
            if not evaluated and not cfg.loop_bodies:
                # no model run to evaluate, no loop to leave in eval mode: the events (those of every
                # project function called, in other modules too) cannot lead to a finding
                continue
            events = graph_events(ctx, cfg)
            training = any(e.kind in (Kind.BACKWARD, Kind.STEP) for found in events.values() for e in found)
            if training:
                yield from _mode_not_restored(ctx, cfg, events)
            else:
                yield from _evaluation_in_train_mode(ctx, owner, cfg, events, evaluating, evaluated)


def _may_concern_modes(ctx: ModuleContext, owner: cst.FunctionDef | None) -> bool:
    """Cheap gate before building graphs, for a function not named for evaluation: mode switches,
    training calls, or code under ``no_grad``."""
    calls = ctx.scopes[owner].calls
    names = {"eval", "train", "backward", "step", "set_training_mode"}
    if any(isinstance(c.func, cst.Attribute) and c.func.attr.value in names for c in calls):
        return True
    return any(without_grad(ctx, call) for call in calls)


def _mode_not_restored(ctx: ModuleContext, cfg: ControlFlowGraph, events: dict[Node, list[Event]]) -> Iterator[Finding]:
    """An evaluation in the training loop, then the next training step with no ``train()`` between."""
    reported: set[cst.CSTNode] = set()
    for loop, body in cfg.loop_bodies.items():
        restoring = {n for n in body if any(e.kind is Kind.TRAIN for e in events.get(n, ()))}
        steps = {n for n in body if _trains_before_restoring(events.get(n, []))}
        if not steps:
            continue
        for node in body:
            found = events.get(node, [])
            if last_mode(found) is not Kind.EVAL:
                continue
            switch = next(e for e in reversed(found) if e.kind is Kind.EVAL)
            if switch.node in reported:
                continue
            models = _switched_models(ctx, switch)
            if models and not any(has_mode_dependent_layers(ctx, q) for q in models):
                continue  # every model it may concern is known to have no dropout / batch-norm
            assume = cfg.conditions_of(node, ctx.parents) if isinstance(node, cst.CSTNode) else frozenset()
            if any(
                cfg.has_path(node, s, avoiding=restoring, within=body | {loop}, correlated=True, assume=assume)
                for s in steps
            ):
                reported.add(switch.node)
                yield Finding(
                    switch.node,
                    "the model is switched to eval mode inside the training loop and train mode is not restored "
                    "before the next training step",
                    subject=ModelSubject(models[0]) if len(set(models)) == 1 else None,
                )


def _switched_models(ctx: ModuleContext, switch: Event) -> list[str]:
    """The project model classes whose mode a switch (or the helper it calls) may change."""
    assert ctx.project is not None
    call = switch.node
    if not isinstance(call, cst.Call):
        return []
    receivers = [(ctx, call.func.value)] if isinstance(call.func, cst.Attribute) and not switch.via_call else []
    callee = ctx.project.resolve_callee(ctx, call) if switch.via_call else None
    if isinstance(callee, FunctionInfo):
        # the helper's own ``x.eval()`` calls, their receivers seen from the helper
        for inner in callee.ctx.scopes[callee.node].calls:
            if isinstance(inner.func, cst.Attribute) and inner.func.attr.value == "eval":
                receivers.append((callee.ctx, inner.func.value))
    return [q for owner, expr in receivers for q in ctx.project.infer(owner, expr) if ctx.project.is_model_class(q)]


def _trains_before_restoring(events: list[Event]) -> bool:
    """A node that runs backward (or a forward for it) without switching to train mode first."""
    for event in events:
        if event.kind is Kind.TRAIN:
            return False
        if event.kind is Kind.BACKWARD:
            return True
    return False


def _evaluated_calls(ctx: ModuleContext, owner: cst.FunctionDef | None, evaluating: bool) -> list[cst.Call]:
    """Runs of a mode-dependent model in an evaluation function or under ``no_grad``."""
    calls = ctx.scopes[owner].calls
    return [c for c in calls if (evaluating or without_grad(ctx, c)) and _is_model_call(ctx, c)]


def _evaluation_in_train_mode(
    ctx: ModuleContext,
    owner: cst.FunctionDef | None,
    cfg: ControlFlowGraph,
    events: dict[Node, list[Event]],
    evaluating: bool,
    evaluated: list[cst.Call],
) -> Iterator[Finding]:
    if not evaluating and any(_computes_training_loss(ctx, c) for c in ctx.scopes[owner].calls):
        return  # a training loss (student forward, teacher under no_grad): the trainer sets modes
    eval_nodes = {n for n, found in events.items() if last_mode(found) is Kind.EVAL}
    train_nodes = {n: e for n, found in events.items() for e in found if e.kind is Kind.TRAIN and not e.via_call}
    for call in evaluated:
        node = cfg.node_of(call, ctx.parents)
        if node is None:
            continue
        explicit = next((e for t, e in train_nodes.items() if cfg.has_path(t, node, avoiding=eval_nodes)), None)
        if explicit is not None:
            yield Finding(
                explicit.node,
                "the model is put in train mode before it is used for inference: call `model.eval()` instead",
                (Related(call, "the model runs here"),),
                _eval_instead(explicit.node),
                _subject(ctx, call),
            )
            return
        if cfg.has_path(ENTRY, node, avoiding=eval_nodes) and not _callers_set_eval(ctx, owner):
            yield Finding(
                call,
                "the model is evaluated without `model.eval()`: dropout and batch-norm are in train mode",
                fix=_eval_around(ctx, owner, call),
                subject=_subject(ctx, call),
            )
            return


def _eval_instead(switch: cst.CSTNode) -> Fix | None:
    """``model.train()`` -> ``model.eval()`` (unsafe: Monte-Carlo dropout keeps train mode on purpose)."""
    if not (isinstance(switch, cst.Call) and isinstance(switch.func, cst.Attribute) and not switch.args):
        return None
    return Fix(
        "Call `eval()` instead of `train()` (review: Monte-Carlo dropout needs train mode)",
        (replace(switch.func.attr, "eval"),),
        safe=False,
    )


def _eval_around(ctx: ModuleContext, owner: cst.FunctionDef | None, call: cst.Call) -> Fix | None:
    """``model.eval()`` before the outermost loop that evaluates, ``model.train()`` after it (unsafe:
    a caller that wanted eval mode afterwards gets train mode back)."""
    is_forward = isinstance(call.func, cst.Attribute) and call.func.attr.value == "forward"
    model = ctx.code(call.func.value if is_forward else call.func)  # type: ignore[attr-defined]
    loops = [node for node in ctx.ancestors(call) if isinstance(node, (cst.For, cst.While))]
    loops = [loop for loop in loops if ctx.enclosing_function(loop) is owner]
    anchor = loops[-1] if loops else ctx.statement_line(call)
    if anchor is None or "\n" in model:
        return None
    edits = [insert_before(anchor, f"{model}.eval()")]
    if not (isinstance(anchor, cst.SimpleStatementLine) and any(isinstance(s, cst.Return) for s in anchor.body)):
        edits.append(insert_after(anchor, f"{model}.train()"))
    return Fix("Switch to eval mode for the evaluation and back to train mode after it", tuple(edits), safe=False)


def _subject(ctx: ModuleContext, model_call: cst.Call) -> ModelSubject | None:
    model = called_model(ctx, model_call)
    return ModelSubject(model) if model is not None else None


def _computes_training_loss(ctx: ModuleContext, call: cst.Call) -> bool:
    """A model forward or a loss outside ``no_grad``: the function is part of training."""
    if without_grad(ctx, call):
        return False
    if _is_model_call(ctx, call):
        return True
    assert ctx.project is not None
    values = ctx.project.infer(ctx, call.func)
    if values:
        return any(knowledge.is_loss(q) for q in values)
    name = (dotted_name(call.func) or "").rsplit(".", 1)[-1].lower()
    return name.endswith(("loss", "criterion", "loss_fn"))


def _is_evaluation_function(ctx: ModuleContext, function: cst.FunctionDef) -> bool:
    name = function.name.value
    if not EVALUATION_NAME.search(name) and not any(is_no_grad(ctx, d.decorator) for d in function.decorators):
        return False
    if name.startswith("test_") and (ctx.path.name.startswith("test_") or "tests" in ctx.path.parts):
        return False  # a unit test, not an evaluation
    info = ctx.project.function_info(function) if ctx.project else None
    # Lightning switches modes around validation_step / test_step / predict_step
    return not (
        info and info.class_qualname and ctx.project.is_subclass(info.class_qualname, knowledge.LIGHTNING_BASES)
    )


def _is_model_call(ctx: ModuleContext, call: cst.Call) -> bool:
    """A call of a network whose layers depend on the mode (project models are looked into)."""
    assert ctx.project is not None
    is_forward = isinstance(call.func, cst.Attribute) and call.func.attr.value == "forward"
    target = call.func.value if is_forward and isinstance(call.func, cst.Attribute) else call.func
    if isinstance(target, cst.Name) and target.value == "self":
        return False  # a model's own method (``generate``): its caller chooses the mode
    if _is_own_submodule(ctx, target):
        return False  # ``self.encoder(x)`` in a model's method: the submodule follows the model's mode
    classes = ctx.project.infer(ctx, target)
    models = [q for q in classes if ctx.project.is_model_class(q)]
    return bool(models) and any(has_mode_dependent_layers(ctx, q) for q in models)


def _is_own_submodule(ctx: ModuleContext, target: cst.BaseExpression) -> bool:
    """``self.<attribute>...`` inside a method of a model class, or a local name taken from it
    (``decoder = self.model.get_decoder()``): a submodule, whose mode ``model.eval()`` /
    ``model.train()`` of the whole model sets."""
    if not _rooted_at_self(ctx, target):
        return False
    class_node = ctx.enclosing_class(target)
    assert ctx.project is not None
    if class_node is None:
        return False
    qualname = ctx.project.qualify(ctx, class_node)
    # a class with its own ``forward`` is a module even when its base comes from outside the project
    info = ctx.project.classes.get(qualname)
    defines_forward = info is not None and "forward" in info.methods
    return defines_forward or ctx.project.is_model_class(qualname)


def _rooted_at_self(ctx: ModuleContext, expr: cst.BaseExpression, through_names: int = 2) -> bool:
    root = expr
    while isinstance(root, (cst.Attribute, cst.Subscript, cst.Call)):
        root = root.func if isinstance(root, cst.Call) else root.value
    if not isinstance(root, cst.Name):
        return False
    if root.value == "self":
        return root is not expr
    binding = ctx.reaching_binding(root) if through_names else None
    return binding is not None and binding.kind == "assign" and _rooted_at_self(ctx, binding.value, through_names - 1)


def _callers_set_eval(ctx: ModuleContext, function: cst.FunctionDef | None) -> bool:
    """Every project call of the function comes after an ``eval()`` on all paths of its caller."""
    if function is None or ctx.project is None:
        return False
    info = ctx.project.function_info(function)
    if info is not None and not ctx.project.callers_known(info):
        return True  # called from many modules (a library's helper): its callers own the mode
    sites = ctx.project.call_sites(info) if info else []
    if not sites:
        return False
    for caller_ctx, call in sites:
        owner = caller_ctx.enclosing_function(call)
        cfg = caller_ctx.cfg(owner)
        events = graph_events(caller_ctx, cfg)
        eval_nodes = {n for n, found in events.items() if last_mode(found) is Kind.EVAL}
        node = cfg.node_of(call, caller_ctx.parents)
        if node is None or cfg.has_path(ENTRY, node, avoiding=eval_nodes):
            return False
    return True
