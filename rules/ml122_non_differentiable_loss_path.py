"""ML122: a loss (or a term of one) computed from predictions only through non-differentiable ops."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import IntEnum

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import walk
from mllint.semantic.training import Kind, backward_operand, call_events, is_torch_model, without_grad

#: ops whose output carries no gradient back to their input
CUT_METHODS = {
    "argmax", "argmin", "argsort", "round", "floor", "ceil", "trunc", "sign", "long", "int", "bool", "byte",
    "short", "eq", "ne", "gt", "lt", "ge", "le",
}  # fmt: skip
CUT_FUNCTIONS = {f"torch.{name}" for name in CUT_METHODS} | {
    "torch.tensor", "torch.Tensor", "torch.FloatTensor", "torch.LongTensor", "torch.nn.functional.one_hot",
    "torch.bucketize", "torch.searchsorted",
}  # fmt: skip
#: explicit, intended detachment (ML006 judges those)
DETACHING = {"detach", "item", "numpy", "tolist", "cpu_numpy"}
BUILTINS = {"int", "bool", "round", "sum", "min", "max", "abs", "float"}
MAX_DEPTH = 8
#: parameters of a loss function that hold targets or settings, not predictions (their types cannot be traced)
NOT_PREDICTION = re.compile(
    r"target|label|truth|^gt|_gt$|^y$|^t$|y_true|mask|weight|eps|smooth|reduction|alpha|beta|gamma|ignore|temp"
    r"|margin|scale|lambda|coef|num|^n_|size|dim|index|^k$",
    re.I,
)


class Flow(IntEnum):
    """What a value carries back to the model's parameters, ordered for combining."""

    CONST = 0  # data, constants, hyper-parameters: no gradient expected
    CUT = 1  # computed from predictions, but only through non-differentiable ops
    UNKNOWN = 2
    LIVE = 3  # differentiable in the predictions


def _combine(flows: list[Flow]) -> Flow:
    return max(flows, default=Flow.CONST)


class NonDifferentiableLossPath(Rule):
    """## What it does
    Finds a loss, or a term added to one, that depends on the model's predictions only through
    operations without a gradient: `argmax`, `round`, comparisons (`pred > 0.5`, `a != b`),
    `.long()` / `.bool()`, `torch.tensor(...)` of a prediction.

    ## Why is this bad?
    Those operations are piecewise constant: their gradient is zero (or absent). The term is computed
    and logged, its value even moves as the model changes, but it sends no gradient to the model. A
    consistency loss, a hard dice loss, a penalty on predicted classes silently does nothing.

    ## Example
    ```python
    def consistency_loss(child_logits, parent_logits):
        child = child_logits.argmax(1)
        parent = parent_logits.argmax(1)
        return (CHILD_TO_PARENT[child] != parent).float().mean()
    ```

    ## Use instead
    ```python
    def consistency_loss(child_logits, parent_logits):
        child_probs = child_logits.softmax(1)
        parent = parent_logits.argmax(1)
        return (child_probs * (CHILD_TO_PARENT[None, :] != parent[:, None])).sum(1).mean()
    ```
    Non-differentiable values used beside a differentiable path (accuracy next to the loss, labels cast
    with `.long()`, indices for `gather`, straight-through estimators) are not reported.
    """

    code = "ML122"
    name = "non-differentiable-loss-path"
    summary = "Loss term depends on predictions only through argmax / round / comparisons: zero gradient"
    severity = "error"
    triggers = ("loss", "Loss")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        if "torch" not in ctx.source:
            return
        for function in ctx.functions:
            if _is_loss_function(ctx, function) and not without_grad(ctx, function.body):
                yield from _check_loss_function(ctx, function)
        for call in ctx.calls:
            if any(e.kind is Kind.BACKWARD for e in call_events(ctx, call)):
                yield from _check_backward(ctx, call)


def _is_loss_function(ctx: ModuleContext, function: cst.FunctionDef) -> bool:
    """A function named for a loss, or the ``forward`` of a loss class."""
    if "loss" in function.name.value.lower():
        return True
    owner = ctx.enclosing_class(function.body)
    return function.name.value in ("forward", "__call__") and owner is not None and owner.name.value.endswith("Loss")


def _check_loss_function(ctx: ModuleContext, function: cst.FunctionDef) -> Iterator[Finding]:
    """Its parameters are predictions (and targets): a returned value cut off from the predictions."""
    params = function.params
    names = [p.name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params]]
    live = {name for name in names if name not in ("self", "cls") and not NOT_PREDICTION.search(name)}
    if not live:
        return
    for ret in ctx.scopes[function].returns:
        if isinstance(ret, (cst.Tuple, cst.List, cst.Dict)) or ctx.enclosing_function(ret) is not function:
            continue
        tracer = _Tracer(ctx, live_names=live)
        if tracer.flow(ret) is Flow.CUT and tracer.cuts:
            yield Finding(
                tracer.cuts[0],
                f"`{function.name.value}` returns a value that depends on its inputs only through "
                "non-differentiable operations: it has no gradient, the model learns nothing from it",
                (Related(ret, "the loss returned here"),),
            )
            return


def _check_backward(ctx: ModuleContext, backward: cst.Call) -> Iterator[Finding]:
    """A term of the backpropagated loss that carries no gradient while the rest does."""
    loss = backward_operand(ctx, backward)
    if loss is None:
        return
    traced = []
    for term in _terms(ctx, loss, 0):
        tracer = _Tracer(ctx, live_names=set(), live_calls=True)
        traced.append((term, tracer.flow(term), tracer.cuts))
    if not any(flow is Flow.LIVE for _, flow, _ in traced):
        return
    for term, flow, cuts in traced:
        if flow is Flow.CUT:
            yield Finding(
                cuts[0] if cuts else term,
                "this term of the loss depends on the model's output only through non-differentiable "
                "operations: it adds to the value but sends no gradient",
                (Related(backward, "the loss is backpropagated here"),),
            )
            return


def _terms(ctx: ModuleContext, expr: cst.BaseExpression, depth: int) -> Iterator[cst.BaseExpression]:
    """The summands of a loss, through local names (``total = lloss + dloss``)."""
    if depth > 4:
        yield expr
    elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Subtract)):
        yield from _terms(ctx, expr.left, depth + 1)
        yield from _terms(ctx, expr.right, depth + 1)
    elif isinstance(expr, cst.Name) and (value := _assigned(ctx, expr)) is not None:
        yield from _terms(ctx, value, depth + 1)
    else:
        yield expr


def _assigned(ctx: ModuleContext, name: cst.Name) -> cst.BaseExpression | None:
    binding = ctx.reaching_binding(name)
    if binding is None or binding.kind != "assign" or binding.path:
        return None
    return binding.value


class _Tracer:
    """Follows a value back to predictions, noting where a prediction first loses its gradient."""

    def __init__(self, ctx: ModuleContext, live_names: set[str], live_calls: bool = False) -> None:
        self.ctx = ctx
        self.live_names = live_names
        #: a call of an unknown callable on data (``model(x)`` with ``model`` a parameter) is a prediction
        self.live_calls = live_calls
        self.cuts: list[cst.CSTNode] = []
        self._known: dict[cst.CSTNode, Flow] = {}
        self._active: set[cst.CSTNode] = set()

    def flow(self, expr: cst.BaseExpression, depth: int = 0) -> Flow:
        if expr in self._known:
            return self._known[expr]
        if depth > MAX_DEPTH or expr in self._active:
            return Flow.UNKNOWN
        self._active.add(expr)
        try:
            self._known[expr] = self._flow(expr, depth)
        finally:
            self._active.discard(expr)
        return self._known[expr]

    def _flow(self, expr: cst.BaseExpression, depth: int) -> Flow:
        if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString, cst.FormattedString, cst.Imaginary)):
            return Flow.CONST
        if isinstance(expr, cst.Name):
            return self._name(expr, depth)
        if isinstance(expr, cst.Attribute):
            return self._attribute(expr, depth)
        if isinstance(expr, cst.Call):
            return self._call(expr, depth)
        if isinstance(expr, cst.Comparison):
            operands = [expr.left, *(target.comparator for target in expr.comparisons)]
            return self._cut(expr, *(self.flow(o, depth) for o in operands))
        if isinstance(expr, cst.BinaryOperation):
            return _combine([self.flow(expr.left, depth), self.flow(expr.right, depth)])
        if isinstance(expr, cst.UnaryOperation):
            flow = self.flow(expr.expression, depth)
            return self._cut(expr, flow) if isinstance(expr.operator, (cst.Not, cst.BitInvert)) else flow
        if isinstance(expr, cst.Subscript):
            parts = [expr.value, *(e.slice.value for e in expr.slice if isinstance(e.slice, cst.Index))]
            return _combine([self.flow(p, depth) for p in parts])
        if isinstance(expr, (cst.Tuple, cst.List)):
            return _combine([self.flow(e.value, depth) for e in expr.elements])
        if isinstance(expr, cst.IfExp):
            return _combine([self.flow(expr.body, depth), self.flow(expr.orelse, depth)])
        return Flow.UNKNOWN

    def _cut(self, node: cst.CSTNode, *inputs: Flow) -> Flow:
        """A non-differentiable op applied to values of these flows: its result has no gradient, whatever
        else it is computed with."""
        if Flow.LIVE in inputs:
            self.cuts.append(node)
            return Flow.CUT
        return Flow.CUT if Flow.CUT in inputs else Flow.CONST

    def _name(self, name: cst.Name, depth: int) -> Flow:
        if self.live_names and self.ctx.reaching_binding(name) is None and _is_parameter(self.ctx, name):
            return Flow.LIVE if name.value in self.live_names else Flow.CONST
        if name.value in ("True", "False", "None"):
            return Flow.CONST
        binding = self.ctx.reaching_binding(name)
        if binding is None:
            table = self.ctx.scopes[None].names.get(name.value)
            # a module-level constant (a lookup table), or an imported name
            if table and all(b.kind == "assign" for b in table):
                return _combine([self.flow(b.value, depth + 1) for b in table])
            return Flow.UNKNOWN
        if binding.kind == "assign" and not binding.path:
            return self.flow(binding.value, depth + 1)
        if binding.kind == "for" and isinstance(binding.value, cst.BaseExpression):
            return self.flow(binding.value, depth + 1) if self.live_names else Flow.UNKNOWN
        return Flow.UNKNOWN

    def _attribute(self, attribute: cst.Attribute, depth: int) -> Flow:
        if attribute.attr.value in ("data",):
            return Flow.CONST
        if attribute.attr.value in ("shape", "dtype", "device", "ndim"):
            return Flow.CONST
        if isinstance(attribute.value, cst.Name) and attribute.value.value == "self":
            return Flow.CONST if _is_hyperparameter(self.ctx, attribute) else Flow.UNKNOWN
        return self.flow(attribute.value, depth) if dotted_name(attribute) is not None else Flow.UNKNOWN

    def _call(self, call: cst.Call, depth: int) -> Flow:
        ctx = self.ctx
        method = call.func.attr.value if isinstance(call.func, cst.Attribute) else None
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        qualname = ctx.qualname(call.func) or ""
        if method in DETACHING:
            return Flow.CONST
        args = [arg.value for arg in call.args]
        if qualname in CUT_FUNCTIONS:
            return self._cut(call, self.flow(args[0], depth) if args else Flow.CONST)
        if receiver is not None and not qualname and method in CUT_METHODS:
            return self._cut(call, self.flow(receiver, depth))
        if is_torch_model(ctx, call.func):
            return Flow.LIVE
        builtin = call.func.value if isinstance(call.func, cst.Name) and call.func.value in BUILTINS else None
        if builtin in ("int", "bool", "round"):
            return self._cut(call, self.flow(args[0], depth) if args else Flow.CONST)
        if qualname.startswith("torch.") or builtin in ("sum", "min", "max", "abs", "float"):
            return _combine([self.flow(a, depth) for a in args])
        if receiver is not None and not qualname:
            if isinstance(receiver, cst.Name) and receiver.value == "self":
                return Flow.UNKNOWN  # the class's own computation: may reach its parameters
            return _combine([self.flow(receiver, depth), *(self.flow(a, depth) for a in args)])
        unknown_callable = receiver is None and not qualname and builtin is None
        return Flow.LIVE if self.live_calls and unknown_callable else Flow.UNKNOWN


def _is_parameter(ctx: ModuleContext, name: cst.Name) -> bool:
    function = ctx.enclosing_function(name)
    if function is None:
        return False
    params = function.params
    return any(p.name.value == name.value for p in [*params.posonly_params, *params.params, *params.kwonly_params])


def _is_hyperparameter(ctx: ModuleContext, attribute: cst.Attribute) -> bool:
    """``self.beta`` set from a number or a constructor argument, never from a call (a layer, a tensor)."""
    owner = ctx.enclosing_class(attribute)
    if owner is None:
        return False
    bindings = [
        binding
        for function in ctx.functions
        if ctx.enclosing_class(function.body) is owner
        for binding in ctx.scopes[function].self_attributes.get(attribute.attr.value, [])
    ]
    return bool(bindings) and all(
        not any(isinstance(node, cst.Call) for node in walk(binding.value)) for binding in bindings
    )
