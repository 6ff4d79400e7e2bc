"""Whether an expression holds a torch tensor, told from how its value is made.

Only positive evidence counts: a torch function that returns a tensor (``torch.randn``,
``F.relu``, ``torch.from_numpy``), a tensor method applied to a tensor (``x.long()``,
``x.view(-1)``), arithmetic or indexing on a tensor, followed through assignments, tuple unpacking
and the return values of project functions. A function parameter, a batch from an unknown
iterable or a module (``model.to(device)``) is not known to be a tensor.
"""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic.scan import Binding

MAX_DEPTH = 6

#: tensor methods that return a tensor (the in-place ``x.add_()`` family returns its receiver too)
TENSOR_METHODS = {
    "to", "cuda", "cpu", "float", "half", "double", "bfloat16", "long", "int", "bool", "byte", "short",
    "type", "type_as", "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "flatten",
    "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "repeat_interleave", "contiguous",
    "clone", "detach", "narrow", "clamp", "clip", "abs", "neg", "exp", "log", "sqrt", "pow", "sigmoid",
    "tanh", "relu", "softmax", "log_softmax", "sum", "mean", "add", "sub", "mul", "div", "masked_fill",
    "index_select", "gather", "roll", "flip", "chunk", "split", "pin_memory", "requires_grad_", "float_",
}  # fmt: skip
#: ``torch.<name>`` functions that do not return a tensor
_NOT_TENSOR_FUNCTIONS = {
    "device", "load", "save", "manual_seed", "seed", "compile", "no_grad", "inference_mode", "enable_grad",
    "set_grad_enabled", "is_tensor", "is_grad_enabled", "numel", "get_default_dtype", "set_default_dtype",
    "set_printoptions", "set_num_threads", "get_num_threads", "use_deterministic_algorithms", "dtype",
    "initial_seed", "is_floating_point", "is_complex", "typename", "set_float32_matmul_precision",
    "split", "chunk", "unbind", "meshgrid", "broadcast_tensors", "sort", "topk", "max", "min", "unique",
}  # fmt: skip
#: namespaces whose lowercase functions return tensors
_TENSOR_NAMESPACES = ("torch.", "torch.nn.functional.", "torch.linalg.", "torch.fft.", "torch.special.")


def returns_tensor(qualname: str) -> bool:
    """A torch function known to return a single tensor."""
    namespace, _, tail = qualname.rpartition(".")
    if f"{namespace}." not in _TENSOR_NAMESPACES or not tail[:1].islower():
        return False
    return tail not in _NOT_TENSOR_FUNCTIONS


def is_tensor(ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> bool:
    """The expression is known to hold a torch tensor."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(expr, cst.Call):
        return _call_returns_tensor(ctx, expr, depth)
    if isinstance(expr, cst.Name):
        binding = ctx.reaching_binding(expr)
        return binding is not None and _binding_is_tensor(ctx, binding, depth)
    if isinstance(expr, cst.BinaryOperation):
        return is_tensor(ctx, expr.left, depth + 1) or is_tensor(ctx, expr.right, depth + 1)
    if isinstance(expr, cst.UnaryOperation):
        return is_tensor(ctx, expr.expression, depth + 1)
    if isinstance(expr, cst.Subscript):
        return is_tensor(ctx, expr.value, depth + 1)
    if isinstance(expr, cst.Attribute) and expr.attr.value in ("data", "grad", "T", "mT"):
        return is_tensor(ctx, expr.value, depth + 1)
    return False


def _call_returns_tensor(ctx: ModuleContext, call: cst.Call, depth: int) -> bool:
    qualname = ctx.qualname(call.func)
    if qualname is not None:
        return returns_tensor(qualname)
    method = call.func.attr.value if isinstance(call.func, cst.Attribute) else None
    if method in TENSOR_METHODS and is_tensor(ctx, call.func.value, depth + 1):  # type: ignore[union-attr]
        return True
    returned = _project_returns(ctx, call)
    return returned is not None and any(is_tensor(owner, value, depth + 1) for owner, value in returned)


def _project_returns(ctx: ModuleContext, call: cst.Call) -> list[tuple[ModuleContext, cst.BaseExpression]] | None:
    from mllint.semantic.project import FunctionInfo

    callee = ctx.project.resolve_callee(ctx, call) if ctx.project is not None else None
    if not isinstance(callee, FunctionInfo):
        return None
    table = callee.ctx.scopes.get(callee.node)
    return [(callee.ctx, value) for value in table.returns] if table is not None else None


def _binding_is_tensor(ctx: ModuleContext, binding: Binding, depth: int) -> bool:
    if binding.kind != "assign":
        return False
    values = [(ctx, binding.value)]
    for index in binding.path:
        values = [element for owner, value in values for element in _elements(owner, value, index)]
    return any(is_tensor(owner, value, depth + 1) for owner, value in values)


def _elements(
    ctx: ModuleContext, value: cst.BaseExpression, index: int
) -> list[tuple[ModuleContext, cst.BaseExpression]]:
    """The ``index``-th element of a tuple, or of the tuples a project function returns."""
    if isinstance(value, (cst.Tuple, cst.List)):
        return [(ctx, value.elements[index].value)] if index < len(value.elements) else []
    if isinstance(value, cst.Call):
        returned = _project_returns(ctx, value) or []
        return [
            element
            for owner, result in returned
            if isinstance(result, (cst.Tuple, cst.List))
            for element in _elements(owner, result, index)
        ]
    return []
