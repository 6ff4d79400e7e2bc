"""What a name or attribute refers to: the classes whose instances it may hold.

Values are followed through assignments, tuple unpacking, ``self.x`` attributes set in any
method of the class (and its project bases), function parameters bound at the project's call
sites, return values of project functions, and methods that return their receiver
(``model.to(device)``). What cannot be traced stays unknown: the empty set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from mllint.semantic import knowledge
from mllint.semantic.scan import Binding

if TYPE_CHECKING:
    from mllint.context import ModuleContext
    from mllint.semantic.project import FunctionInfo, ProjectIndex
    from mllint.semantic.summary import ClassSummary

EMPTY: frozenset[str] = frozenset()
MAX_DEPTH = 8
#: methods that return their receiver (or a copy of the same kind)
SELF_RETURNING = {
    "to",
    "cuda",
    "cpu",
    "float",
    "half",
    "double",
    "bfloat16",
    "train",
    "eval",
    "requires_grad_",
    "share_memory",
}
#: wrappers whose instance behaves as the wrapped model
WRAPPERS = {
    "torch.nn.parallel.DataParallel",
    "torch.nn.parallel.DistributedDataParallel",
    "torch.compile",
    "torch.jit.script",
    "torch.nn.SyncBatchNorm.convert_sync_batchnorm",
}


class ValueInference:
    def __init__(self, project: ProjectIndex) -> None:
        self.project = project
        self._memo: dict[tuple[int, cst.CSTNode], frozenset[str]] = {}
        self._active: set[cst.CSTNode] = set()

    def clear(self) -> None:
        self._memo.clear()

    def infer(self, ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> frozenset[str]:
        if depth > MAX_DEPTH or expr in self._active:
            return EMPTY
        key = (id(ctx), expr)
        if key in self._memo:
            return self._memo[key]
        self._active.add(expr)
        try:
            result = self._infer(ctx, expr, depth + 1)
        finally:
            self._active.discard(expr)
        self._memo[key] = result
        return result

    # -- dispatch ----------------------------------------------------------------------------
    def _infer(self, ctx: ModuleContext, expr: cst.BaseExpression, depth: int) -> frozenset[str]:
        if isinstance(expr, cst.Call):
            return self._infer_call(ctx, expr, depth)
        if isinstance(expr, cst.Name):
            return self._infer_name(ctx, expr, depth)
        if isinstance(expr, cst.Attribute):
            return self._infer_attribute(ctx, expr, depth)
        if isinstance(expr, (cst.IfExp,)):
            return self.infer(ctx, expr.body, depth) | self.infer(ctx, expr.orelse, depth)
        if isinstance(expr, cst.BooleanOperation):
            return self.infer(ctx, expr.left, depth) | self.infer(ctx, expr.right, depth)
        return EMPTY

    def _infer_call(self, ctx: ModuleContext, call: cst.Call, depth: int) -> frozenset[str]:
        from mllint.semantic.project import ClassInfo, FunctionInfo

        qualname = ctx.qualname(call.func)
        if qualname is not None:
            qualname = knowledge.normalize(qualname)
            if qualname in WRAPPERS and call.args:
                return self.infer(ctx, call.args[0].value, depth) | {qualname}
        constructed = self.project.constructed_class(ctx, call)
        if constructed is not None:
            return frozenset({constructed})
        callee = self.project.resolve_callee(ctx, call)
        if isinstance(callee, ClassInfo):
            return frozenset({callee.qualname})
        if isinstance(callee, FunctionInfo):
            return self._returns(callee, depth)
        if qualname is not None:
            return frozenset({qualname})
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in SELF_RETURNING:
            return self.infer(ctx, call.func.value, depth)
        return EMPTY

    def _returns(self, function: FunctionInfo, depth: int) -> frozenset[str]:
        table = function.ctx.scopes.get(function.node)
        if table is None:
            return EMPTY
        result: set[str] = set()
        for value in table.returns:
            result |= self.infer(function.ctx, value, depth)
        return frozenset(result)

    def _infer_name(self, ctx: ModuleContext, name: cst.Name, depth: int) -> frozenset[str]:
        function = ctx.enclosing_function(name)
        while True:
            table = ctx.scopes.get(function)
            if table is not None and name.value in table.names and name.value not in table.outer_names:
                return self._from_bindings(ctx, table.names[name.value], depth)
            if function is None:
                break
            if self._is_param(function, name.value):
                receiver = self._receiver_class(ctx, function, name.value)
                if receiver is not None:
                    return frozenset({receiver})
                return self._infer_param(ctx, function, name.value, depth)
            function = ctx.enclosing_function(function)
        return EMPTY

    def _from_bindings(self, ctx: ModuleContext, bindings: list[Binding], depth: int) -> frozenset[str]:
        result: set[str] = set()
        for binding in bindings:
            if binding.kind not in ("assign", "with"):
                continue
            element = unpacked(ctx, binding.value, binding.path)
            if element is not None:
                result |= self.infer(*element, depth)
        return frozenset(result)

    def _receiver_class(self, ctx: ModuleContext, function: cst.FunctionDef, name: str) -> str | None:
        """``self`` in a method: an instance of the enclosing class."""
        info = self.project.function_info(function)
        params = function.params.params
        if info is None or info.class_qualname is None or not params or params[0].name.value != name:
            return None
        if any(_decorator_name(d) in ("staticmethod", "classmethod") for d in function.decorators):
            return None
        return info.class_qualname

    @staticmethod
    def _is_param(function: cst.FunctionDef, name: str) -> bool:
        params = function.params
        every = [*params.posonly_params, *params.params, *params.kwonly_params]
        return any(param.name.value == name for param in every)

    def _infer_param(self, ctx: ModuleContext, function: cst.FunctionDef, name: str, depth: int) -> frozenset[str]:
        info = self.project.function_info(function)
        if info is None:
            return EMPTY
        result: set[str] = set()
        param = next(param for param in info.params if param.name.value == name)
        if param.default is not None:
            result |= self.infer(ctx, param.default, depth)
        position = [p.name.value for p in [*function.params.posonly_params, *function.params.params]]
        offset = 1 if info.class_qualname and position and position[0] in ("self", "cls") else 0
        for caller_ctx, call in self.project.call_sites(info):
            passed = argument(call, name, position.index(name) - offset if name in position else None)
            if passed is not None:
                result |= self.infer(caller_ctx, passed, depth)
        return frozenset(result)

    def _infer_attribute(self, ctx: ModuleContext, attribute: cst.Attribute, depth: int) -> frozenset[str]:
        owner = attribute.value
        name = attribute.attr.value
        if not self.project.may_assign_to_self(name):
            return EMPTY  # no class assigns it: what the owner holds does not matter
        if isinstance(owner, cst.Name) and owner.value == "self":
            class_node = ctx.enclosing_class(attribute)
            if class_node is None:
                return EMPTY
            info = self.project.classes.get(self.project.qualify(ctx, class_node))
            classes = [info.qualname] if info else []
        else:
            qualname = ctx.qualname(attribute)
            if qualname is not None and ctx.qualname(owner) is not None:
                return EMPTY
            classes = list(self.infer(ctx, owner, depth))
        result: set[str] = set()
        for class_qualname in classes:
            result |= self.class_attribute(class_qualname, name, depth)
        return frozenset(result)

    def class_attribute(self, class_qualname: str, name: str, depth: int = 0) -> frozenset[str]:
        """What the class or its project ancestors assign to ``self.<name>``: told by an
        ancestor's summary where it can, its parsed methods otherwise."""
        result: set[str] = set()
        for ancestor, summary in self.project.summaries_assigning(class_qualname, name):
            told = None if summary.qualname in self.project.classes else self._summarized(summary, name)
            if told is None:
                info = self.project.resolve_class(ancestor)
                told = self._from_bindings(info.ctx, info.self_bindings(name), depth) if info else EMPTY
            result |= told
        return frozenset(result)

    def _summarized(self, summary: ClassSummary, name: str) -> frozenset[str] | None:
        """The attribute's values as :meth:`_infer_call` would infer them, when every value bound
        is a call of a module-level name that is not a project function (whose returns only its
        parse tells); None otherwise."""
        result: set[str] = set()
        for qualname in summary.assigned.get(name, (None,)):
            if qualname is None or knowledge.normalize(qualname) in WRAPPERS:
                return None
            if not self.project.defines(qualname.rsplit(".", 1)[-1]):
                result.add(knowledge.normalize(qualname))
                continue
            constructed = self.project.class_summary(qualname, summary.module_name)
            if constructed is None:
                return None  # perhaps a project function
            result.add(constructed.qualname)
        return frozenset(result)


def argument(call: cst.Call, name: str, position: int | None = None) -> cst.BaseExpression | None:
    """The expression passed to a parameter, by keyword or by position."""
    positional = 0
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg.value
        elif arg.star:
            return None
        else:
            if position is not None and positional == position:
                return arg.value
            positional += 1
    return None


def _decorator_name(decorator: cst.Decorator) -> str:
    target = decorator.decorator
    return target.value if isinstance(target, cst.Name) else ""


def may_pass(call: cst.Call, name: str, position: int) -> bool:
    """Whether a call passes a parameter: by keyword, by position, or possibly through
    ``*args`` / ``**kwargs``."""
    positional = 0
    for arg in call.args:
        if arg.star or (arg.keyword is not None and arg.keyword.value == name):
            return True
        if arg.keyword is None:
            positional += 1
    return positional > position


def unpacked(
    ctx: ModuleContext, value: cst.BaseExpression, path: tuple[int, ...]
) -> tuple[ModuleContext, cst.BaseExpression] | None:
    """The element of ``a, b = value`` that a target at ``path`` receives, and the module it is
    written in: through tuples and lists, the arguments of calls that hand them back wrapped, and
    the tuples project functions return."""
    for index in path:
        if isinstance(value, (cst.Tuple, cst.List)) and index < len(value.elements):
            value = value.elements[index].value
        elif isinstance(value, cst.Call) and _returns_its_arguments(value) and index < len(value.args):
            value = value.args[index].value
        elif isinstance(value, cst.Call):
            element = returned_element(ctx, value, index)
            if element is None:
                return None
            ctx, value = element
        else:
            return None
    return ctx, value


def _returns_its_arguments(call: cst.Call) -> bool:
    # ``accelerator.prepare(model, optimizer, loader)`` / ``fabric.setup_dataloaders(a, b)``
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("prepare", "setup_dataloaders")


def returned_element(ctx: ModuleContext, call: cst.Call, index: int) -> tuple[ModuleContext, cst.BaseExpression] | None:
    """Element ``index`` of the tuple (or list) a project function returns: ``model, opt = build()``."""
    from mllint.semantic.project import FunctionInfo

    assert ctx.project is not None
    callee = ctx.project.resolve_callee(ctx, call)
    if not isinstance(callee, FunctionInfo):
        return None
    table = callee.ctx.scopes.get(callee.node)
    for value in table.returns if table else ():
        if isinstance(value, (cst.Tuple, cst.List)) and index < len(value.elements):
            return callee.ctx, value.elements[index].value
    return None
