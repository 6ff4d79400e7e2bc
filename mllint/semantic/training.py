"""Training events: what a statement does to gradients, optimizers and model modes.

``loss.backward()`` is a BACKWARD, ``opt.step()`` a STEP (identified by the receiver's value:
an optimizer, a GradScaler stepping one), ``opt.zero_grad()`` / ``p.grad = None`` a CLEAR, and so
on. A call into a project function contributes the events of that function's body, in order,
so a loop that calls ``train_step(model, batch, optimizer)`` is seen doing what the helper does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.cfg import ControlFlowGraph, Node
from mllint.semantic.names import called_name, dotted_name
from mllint.semantic.scan import walk


class Kind(Enum):
    BACKWARD = "backward"
    STEP = "step"
    CLEAR = "clear"
    SCHEDULER_STEP = "scheduler-step"
    CLIP = "clip"
    UNSCALE = "unscale"
    EVAL = "eval"
    TRAIN = "train"


@dataclass(frozen=True)
class Event:
    kind: Kind
    #: the call (or assignment) in the checked module that causes the event
    node: cst.CSTNode
    #: the optimizer or model concerned, as written (``self.opt``), when it can be told
    target: str | None = None
    #: BACKWARD through ``scaler.scale(loss)``; CLIP that unscales itself; STEP with a closure
    scaled: bool = False
    closure: bool = False
    #: the event happens inside a project function that ``node`` calls
    via_call: bool = False


CLIP_FUNCTIONS = {"clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_grads"}
#: wrappers whose clipping unscales AMP gradients itself
SELF_UNSCALING = ("accelerator", "fabric", "trainer")
MAX_CALL_DEPTH = 3


def _receiver(call: cst.Call) -> cst.BaseExpression | None:
    return call.func.value if isinstance(call.func, cst.Attribute) else None


def _text(ctx: ModuleContext, expr: cst.BaseExpression | None) -> str | None:
    if expr is None:
        return None
    return dotted_name(expr) or ctx.code(expr)


def _kinds_of(ctx: ModuleContext, expr: cst.BaseExpression) -> tuple[bool, bool, bool]:
    """(optimizer, scheduler, scaler) for the value of ``expr``; a name decides only when the
    value cannot be traced."""
    assert ctx.project is not None
    values = ctx.project.infer(ctx, expr)
    if values:
        return (
            any(knowledge.is_optimizer_class(v) for v in values),
            any(knowledge.is_scheduler_class(v) for v in values),
            any(knowledge.is_grad_scaler(v) for v in values),
        )
    name = (dotted_name(expr) or "").rsplit(".", 1)[-1].lower()
    scheduler = "sched" in name or name.startswith("lr") or "warmup" in name
    scaler = "scaler" in name
    optimizer = not scheduler and not scaler and ("opt" in name or "solver" in name)
    return optimizer, scheduler, scaler


def _is_scaled(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
    """``scaler.scale(loss)``: the receiver of a backward under automatic mixed precision."""
    return isinstance(expr, cst.Call) and called_name(expr) == "scale" and _receiver(expr) is not None


def call_events(ctx: ModuleContext, call: cst.Call) -> list[Event]:
    """The events of one call, not looking into project functions."""
    method = called_name(call)
    receiver = _receiver(call)
    qualname = ctx.qualname(call.func) or ""
    if method == "backward":
        if qualname == "torch.autograd.backward" or receiver is None:
            return [Event(Kind.BACKWARD, call)]
        return [Event(Kind.BACKWARD, call, scaled=_is_scaled(ctx, receiver))]
    if method in ("manual_backward",):
        return [Event(Kind.BACKWARD, call)]
    if method == "zero_grad":
        return [Event(Kind.CLEAR, call, _text(ctx, receiver))]
    if method == "zero_" and receiver is not None and "grad" in (_text(ctx, receiver) or ""):
        return [Event(Kind.CLEAR, call)]
    if method in CLIP_FUNCTIONS:
        unscales = any(part in (_text(ctx, receiver) or "").lower() for part in SELF_UNSCALING)
        return [Event(Kind.CLIP, call, scaled=unscales)]
    if method == "unscale_":
        return [Event(Kind.UNSCALE, call)]
    if method == "step" and receiver is not None:
        return _step_event(ctx, call, receiver)
    if method == "set_training_mode" and receiver is not None and call.args:
        mode = call.args[0].value
        kind = Kind.TRAIN if isinstance(mode, cst.Name) and mode.value == "True" else Kind.EVAL
        return [Event(kind, call, _text(ctx, receiver))]
    if method == "eval" and receiver is not None and not call.args:
        return [Event(Kind.EVAL, call, _text(ctx, receiver))]
    if method == "train" and receiver is not None:
        mode = call.args[0].value if call.args else None
        if isinstance(mode, cst.Name) and mode.value == "False":
            return [Event(Kind.EVAL, call, _text(ctx, receiver))]
        if mode is None or (isinstance(mode, cst.Name) and mode.value == "True"):
            return [Event(Kind.TRAIN, call, _text(ctx, receiver))]
    return []


def backward_operand(ctx: ModuleContext, call: cst.Call) -> cst.BaseExpression | None:
    """The tensor a BACKWARD call backpropagates: ``loss`` in ``loss.backward()``,
    ``scaler.scale(loss).backward()``, ``accelerator.backward(loss)`` or ``manual_backward(loss)``."""
    if called_name(call) == "backward" and _receiver(call) is not None and not call.args:
        receiver = _receiver(call)
        if _is_scaled(ctx, receiver) and receiver.args:  # type: ignore[arg-type, union-attr]
            return receiver.args[0].value  # type: ignore[union-attr]
        return receiver
    return call.args[0].value if call.args else None


def _step_event(ctx: ModuleContext, call: cst.Call, receiver: cst.BaseExpression) -> list[Event]:
    optimizer, scheduler, scaler = _kinds_of(ctx, receiver)
    if scaler and call.args:
        return [Event(Kind.STEP, call, _text(ctx, call.args[0].value))]
    if scheduler:
        return [Event(Kind.SCHEDULER_STEP, call, _text(ctx, receiver))]
    if optimizer:
        closure = any(arg.keyword is None or arg.keyword.value == "closure" for arg in call.args)
        return [Event(Kind.STEP, call, _text(ctx, receiver), closure=closure)]
    return []


def _grad_reset(node: cst.CSTNode) -> bool:
    """``p.grad = None``: gradients cleared by assignment."""
    if not isinstance(node, cst.Assign) or not (isinstance(node.value, cst.Name) and node.value.value == "None"):
        return False
    return any(isinstance(t.target, cst.Attribute) and t.target.attr.value == "grad" for t in node.targets)


def node_events(ctx: ModuleContext, node: cst.CSTNode, depth: int = 0) -> list[Event]:
    """Events of a statement (or header), in source order, calls into project functions included.

    For a compound statement only its header counts (an ``if``'s test, a ``for``'s iterable):
    the body's statements are graph nodes of their own.
    """
    events: list[Event] = []
    for part in _own_parts(node):
        for inner in walk(part):
            if isinstance(inner, cst.Call):
                events.extend(call_events(ctx, inner) or _callee_events(ctx, inner, depth))
            elif _grad_reset(inner):
                events.append(Event(Kind.CLEAR, inner))
    return events


def graph_events(ctx: ModuleContext, cfg: ControlFlowGraph) -> dict[Node, list[Event]]:
    """The events of every node of a control-flow graph (nodes without events left out); asked by
    several rules of the same function, computed once."""
    key = ("graph_events", cfg)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = {}
        for node in cfg.graph:
            if isinstance(node, cst.CSTNode):
                events = node_events(ctx, node)
                if events:
                    found[node] = events
    return found  # type: ignore[return-value]


def last_mode(events: list[Event]) -> Kind | None:
    """The mode (``EVAL`` or ``TRAIN``) the last switch among ``events`` leaves a model in."""
    modes = [e.kind for e in events if e.kind in (Kind.EVAL, Kind.TRAIN)]
    return modes[-1] if modes else None


def _own_parts(node: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(node, (cst.If, cst.While)):
        return [node.test]
    if isinstance(node, cst.For):
        return [node.iter]
    if isinstance(node, cst.With):
        return list(node.items)
    if isinstance(node, (cst.Try, cst.TryStar, cst.ExceptHandler, cst.Match, cst.FunctionDef, cst.ClassDef)):
        return []
    return [node]


def _callee_events(ctx: ModuleContext, call: cst.Call, depth: int) -> list[Event]:
    """A project function's events, attributed to the call that runs them."""
    if depth >= MAX_CALL_DEPTH or ctx.project is None:
        return []
    from mllint.semantic.project import FunctionInfo

    if ctx.project.constructed_class(ctx, call) is not None:
        return []  # a constructor's events are not followed: told without parsing the class's module
    callee = ctx.project.resolve_callee(ctx, call)
    if not isinstance(callee, FunctionInfo):
        return []
    events = function_events(callee.ctx, callee.node, depth + 1)
    built = _built_locally(callee.ctx, callee.node)
    return [
        Event(e.kind, call, e.target, e.scaled, e.closure, via_call=True)
        for e in events
        # a mode switch of a model the helper builds itself does not change the caller's model
        if not (e.kind in (Kind.EVAL, Kind.TRAIN) and e.target in built)
    ]


def _built_locally(ctx: ModuleContext, function: cst.FunctionDef) -> set[str]:
    """Local names bound only to freshly constructed objects (``model = Net(...).to(device)``)."""
    built = set()
    for name, bindings in ctx.scopes[function].names.items():
        if bindings and all(_constructs(ctx, binding.value) for binding in bindings):
            built.add(name)
    return built


def _constructs(ctx: ModuleContext, value: cst.BaseExpression) -> bool:
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in ("to", "cuda", "cpu", "eval", "train", "float", "half")
    ):
        value = value.func.value
    # ``Net(...)``, ``create_model(...)``, ``Model(envs)`` with the class passed in: a new object;
    # ``task.get_module()`` may hand out the caller's
    return isinstance(value, cst.Call) and (isinstance(value.func, cst.Name) or ctx.qualname(value.func) is not None)


def function_events(ctx: ModuleContext, function: cst.FunctionDef, depth: int = 0) -> tuple[Event, ...]:
    """Every event of a function body in source order (nested definitions excluded); computed
    once per depth: a helper called from many places is looked into once."""
    key = ("function_events", function, depth)
    found = ctx.memo.get(key)
    if found is None:
        events: list[Event] = []
        for statement in _statements_of(function.body):
            events.extend(node_events(ctx, statement, depth))
        found = ctx.memo[key] = tuple(events)
    return found  # type: ignore[return-value]


def _block_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    from mllint.semantic.scan import iter_children

    return [child for child in iter_children(node) if not isinstance(child, cst.BaseExpression)]


def has_mode_dependent_layers(ctx: ModuleContext, class_qualname: str, seen: set[str] | None = None) -> bool:
    """Whether a model holds dropout / batch-norm-like layers; a model this project does not
    define (a torchvision or timm network, an unknown class) counts as holding them."""
    assert ctx.project is not None
    seen = seen if seen is not None else set()
    known = knowledge.is_mode_dependent(class_qualname)
    if known is not None:
        return known
    if ctx.project.class_summary(class_qualname) is None:
        return True
    for ancestor in ctx.project.mro(class_qualname):
        base = ctx.project.resolve_class(ancestor)
        if base is None:
            if ancestor not in knowledge.MODULE_BASES and knowledge.is_mode_dependent(ancestor) is not False:
                return True
            continue
        if ancestor in seen:
            continue
        seen.add(ancestor)
        for node in base.ctx.walk(base.node):
            qualname = base.ctx.qualname(node.func) if isinstance(node, cst.Call) else None
            if qualname is None:
                continue
            if knowledge.is_mode_dependent(qualname):
                return True
            nested = ctx.project.resolve_class(qualname, base.ctx.module_name)
            if nested is not None and has_mode_dependent_layers(ctx, nested.qualname, seen):
                return True
    return False


NO_GRAD = {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad"}


def is_no_grad(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
    """``torch.no_grad()`` / ``torch.inference_mode()``, as a context manager or a decorator."""
    target = expr.func if isinstance(expr, cst.Call) else expr
    return (ctx.qualname(target) or "") in NO_GRAD


def without_grad(ctx: ModuleContext, node: cst.CSTNode) -> bool:
    """The node runs with autograd off: in a ``no_grad`` block or a function decorated with it."""
    for ancestor in ctx.ancestors(node):
        kind = ancestor.__class__  # by class: asked of every call, up every ancestor (see ``is_kind``)
        if kind is cst.With and any(is_no_grad(ctx, item.item) for item in ancestor.items):  # type: ignore[attr-defined]
            return True
        if kind is cst.FunctionDef:
            return any(is_no_grad(ctx, d.decorator) for d in ancestor.decorators)  # type: ignore[attr-defined]
    return False


TORCH_MODEL_BASES = knowledge.MODULE_BASES - {
    "flax.linen.Module",
    "keras.Model",
    "keras.Sequential",
    "keras.layers.Layer",
}


def is_torch_model(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
    """The expression holds a PyTorch module that is not a loss: a ``torch.nn`` layer, a project
    ``nn.Module`` subclass, a torchvision / timm / transformers network. ``self`` is left out (a
    model's own methods)."""
    if ctx.project is None or (isinstance(expr, cst.Name) and expr.value == "self"):
        return False
    for qualname in ctx.project.infer(ctx, expr):
        normalized = knowledge.normalize(qualname)
        tail = normalized.rsplit(".", 1)[-1]
        if ctx.project.class_summary(qualname) is not None:
            if ctx.project.is_subclass(qualname, TORCH_MODEL_BASES):
                return True
        elif normalized.startswith("torch.nn.") and not knowledge.is_loss(normalized):
            return tail[:1].isupper()
        elif normalized.startswith(("torchvision.models.", "timm.", "transformers.")):
            return not tail.startswith(("TF", "Flax"))
    return False


def loop_trains(ctx: ModuleContext, loop: cst.For | cst.While) -> bool:
    """The loop's body runs a backward pass or an optimizer step (in a called project function too)."""
    for statement in _statements_of(loop.body):
        if any(event.kind in (Kind.BACKWARD, Kind.STEP) for event in node_events(ctx, statement)):
            return True
    return False


def _statements_of(body: cst.CSTNode) -> list[cst.CSTNode]:
    """The statements and compound headers of a block, nested blocks included, definitions not."""
    found: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            continue
        if isinstance(node, (cst.BaseSmallStatement, cst.If, cst.For, cst.While, cst.With)):
            found.append(node)
        if not isinstance(node, cst.BaseSmallStatement):
            stack.extend(reversed(_block_children(node)))
    return found
