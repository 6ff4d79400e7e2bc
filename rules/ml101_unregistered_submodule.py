"""ML101: layers kept in a plain list / dict / tuple attribute of an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.modules import is_module_class, module_classes

#: methods that put values into a list / dict held by an attribute (argument positions of values)
FILLING_METHODS = {"append": (0,), "extend": (0,), "insert": (1,), "update": (0,), "setdefault": (1,)}
#: calls through which a module registers submodules it is not assigned directly
REGISTERING = {"add_module", "register_module", "setattr", "register_parameter"}
PARAMETER = "torch.nn.Parameter"


class UnregisteredSubmodule(Rule):
    """## What it does
    Finds layers (or `nn.Parameter`s) of an `nn.Module` stored in a plain Python `list`, `dict`
    or `tuple` attribute (`self.blocks = [nn.Linear(...) for _ in range(n)]`,
    `self.heads.append(nn.Linear(...))`) instead of an `nn.ModuleList` / `nn.ModuleDict` /
    `nn.ParameterList`.

    ## Why is this bad?
    PyTorch registers submodules only when they are assigned directly or held by its own
    containers. Layers in a plain list are invisible to `parameters()`, so the optimizer never
    updates them; `model.to(device)` leaves them behind, `state_dict()` does not save them and
    `model.eval()` does not reach them. The model still runs and the loss still goes down a little
    (the registered layers train), so nothing fails: those layers simply keep their random
    initialization.

    ## Example
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = [nn.Linear(64, 64) for _ in range(3)]
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.ModuleList(nn.Linear(64, 64) for _ in range(3))
    ```
    """

    code = "ML101"
    name = "unregistered-submodule"
    summary = "Layers kept in a plain list / dict / tuple attribute of an nn.Module: never registered or trained"
    severity = "error"
    triggers = ("self.",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        assert ctx.project is not None
        by_hand: set[cst.ClassDef] | None = None
        for class_node in ctx.classes:
            info = ctx.project.classes.get(ctx.project.qualify(ctx, class_node))
            if info is None:
                continue
            methods = [method.node for method in info.methods.values()]
            # the class's own code first: walking its ancestors (in other modules) is dearer
            containers = _container_attributes(ctx, methods)
            if not containers or not is_module_class(ctx, info.qualname):
                continue
            by_hand = _classes_registering_by_hand(ctx) if by_hand is None else by_hand
            if class_node in by_hand:
                continue
            for attribute, assignments in containers.items():
                if _wrapped_later(ctx, class_node, attribute):
                    continue
                found = _first_layer_stored(ctx, methods, attribute, assignments)
                if found is not None:
                    where, kind = found
                    yield Finding(
                        where,
                        _message(attribute, assignments[0], kind),
                        (Related(assignments[0], f"`self.{attribute}` created here"),),
                    )


def _message(attribute: str, assignment: cst.CSTNode, kind: str) -> str:
    value = assignment.value if isinstance(assignment, cst.Assign) else None
    container = (
        "dict" if isinstance(value, (cst.Dict, cst.DictComp)) else "tuple" if isinstance(value, cst.Tuple) else "list"
    )
    if kind == PARAMETER:
        what, fix = "parameters", "nn.ParameterDict" if container == "dict" else "nn.ParameterList"
    else:
        what, fix = "layers", "nn.ModuleDict" if container == "dict" else "nn.ModuleList"
    return (
        f"`self.{attribute}` is a plain {container}: the {what} in it are not registered "
        f"(missing from `parameters()`, `state_dict()` and `.to()`: not trained by an optimizer built "
        f"from the model, not saved, not moved); use {fix}"
    )


def _classes_registering_by_hand(ctx: ModuleContext) -> set[cst.ClassDef]:
    """Classes that call ``self.add_module(name, layer)`` / ``setattr(self, ...)``: members of their
    lists may be registered."""
    classes: set[cst.ClassDef] = set()
    for call in ctx.calls:
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if name in REGISTERING:
            classes.update(node for node in ctx.ancestors(call) if isinstance(node, cst.ClassDef))
    return classes


def _container_attributes(ctx: ModuleContext, methods: list[cst.FunctionDef]) -> dict[str, list[cst.CSTNode]]:
    """``self.x`` attributes every assignment of which is a plain list / dict / tuple."""
    found: dict[str, list[cst.CSTNode]] = {}
    rejected: set[str] = set()
    for method in methods:
        for attribute, bindings in ctx.scopes[method].self_attributes.items():
            for binding in bindings:
                if binding.kind == "augassign" and _contents(binding.value, attribute) is not None:
                    continue
                if binding.kind != "assign" or binding.path or _contents(binding.value, attribute) is None:
                    rejected.add(attribute)
                elif binding.node is not None:
                    found.setdefault(attribute, []).append(binding.node)
    return {attribute: nodes for attribute, nodes in found.items() if attribute not in rejected}


def _contents(expr: cst.BaseExpression, attribute: str) -> list[cst.BaseExpression] | None:
    """The values a plain container expression holds (``self.x + [layer]`` included), or None
    when the expression is not a plain container."""
    if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
        return [element.value for element in expr.elements]
    if isinstance(expr, cst.Dict):
        return [element.value for element in expr.elements if isinstance(element, cst.DictElement)]
    if isinstance(expr, (cst.ListComp, cst.SetComp)):
        return [expr.elt]
    if isinstance(expr, cst.DictComp):
        return [expr.value]
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        left, right = _contents(expr.left, attribute), _contents(expr.right, attribute)
        if left is not None and right is not None:
            return left + right
        if _is_self_attribute(expr.left, attribute) and right is not None:
            return right
    return None


def _is_self_attribute(expr: cst.BaseExpression, attribute: str) -> bool:
    return (
        isinstance(expr, cst.Attribute)
        and isinstance(expr.value, cst.Name)
        and expr.value.value == "self"
        and expr.attr.value == attribute
    )


def _wrapped_later(ctx: ModuleContext, class_node: cst.ClassDef, attribute: str) -> bool:
    """``nn.ModuleList(self.x)`` / ``nn.Sequential(*self.x)``: the members get registered."""
    for node in ctx.walk(class_node):
        if (
            isinstance(node, cst.Call)
            and any(_is_self_attribute(arg.value, attribute) for arg in node.args)
            and module_classes(ctx, node)
        ):
            return True
    return False


def _first_layer_stored(
    ctx: ModuleContext, methods: list[cst.FunctionDef], attribute: str, assignments: list[cst.CSTNode]
) -> tuple[cst.CSTNode, str] | None:
    """Where a freshly built layer first goes into the container, and its class."""
    stores: list[tuple[cst.CSTNode, list[cst.BaseExpression]]] = []
    for assignment in assignments:
        value = assignment.value if isinstance(assignment, (cst.Assign, cst.AugAssign)) else None
        if value is not None:
            stores.append((assignment, _contents(value, attribute) or []))
    for method in methods:
        for node in ctx.walk(method):
            stored = _filled(node, attribute)
            if stored is not None:
                stores.append((node, stored))
            elif isinstance(node, cst.AugAssign) and _is_self_attribute(node.target, attribute):
                stores.append((node, _contents(node.value, attribute) or []))
    for node, values in sorted(stores, key=lambda store: ctx.order(store[0])):
        for value in values:
            kind = _built_layer(ctx, value)
            if kind is not None:
                return ctx.statement(node) or node, kind
    return None


def _filled(node: cst.CSTNode, attribute: str) -> list[cst.BaseExpression] | None:
    """``self.x.append(v)`` / ``self.x[k] = v``: the values put into the container."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        positions = FILLING_METHODS.get(node.func.attr.value)
        if positions is None or not _is_self_attribute(node.func.value, attribute):
            return None
        values = [node.args[i].value for i in positions if i < len(node.args) and not node.args[i].star]
        if node.func.attr.value in ("extend", "update"):
            return [item for value in values for item in (_contents(value, attribute) or [])]
        return values
    if isinstance(node, cst.Assign):
        for target in node.targets:
            if isinstance(target.target, cst.Subscript) and _is_self_attribute(target.target.value, attribute):
                return [node.value]
    return None


def _built_layer(ctx: ModuleContext, value: cst.BaseExpression, depth: int = 0) -> str | None:
    """The class of a layer (or parameter) an expression builds right there, nested containers
    included; None for anything else (an alias of a registered layer, an unknown value)."""
    if depth > 4:
        return None
    nested = _contents(value, "")
    if nested is not None:
        return next((kind for item in nested if (kind := _built_layer(ctx, item, depth + 1))), None)
    construction = _construction(ctx, value)
    if construction is None:
        return None
    if knowledge.normalize(ctx.qualname(construction.func) or "") == PARAMETER:
        return PARAMETER
    classes = {
        qualname for qualname in module_classes(ctx, construction) if not knowledge.is_parameterless_layer(qualname)
    }
    return min(classes) if classes else None


def _construction(ctx: ModuleContext, value: cst.BaseExpression) -> cst.Call | None:
    """``nn.Linear(...)`` (``.to(device)`` and the like allowed), directly or through a local
    variable used for nothing else."""
    if isinstance(value, cst.Name):
        binding = ctx.reaching_binding(value)
        if binding is None or binding.kind != "assign" or binding.path or _used_elsewhere(ctx, value):
            return None
        value = binding.value
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and ctx.qualname(value.func) is None:
        value = value.func.value  # ``Layer(...).to(device)``: the receiver is what was built
    if isinstance(value, cst.Call) and (isinstance(value.func, cst.Name) or ctx.qualname(value.func) is not None):
        return value
    return None


def _used_elsewhere(ctx: ModuleContext, name: cst.Name) -> bool:
    """The variable also goes somewhere else (``self.fc = layer``): it may be registered there."""
    function = ctx.enclosing_function(name)
    if function is None:
        return True
    for use in ctx.walk(function):
        if not isinstance(use, cst.Name) or use.value != name.value or use is name:
            continue
        parent = ctx.parent(use)
        if isinstance(parent, cst.Assign) and parent.value is use:
            return True
        call = ctx.parent(parent) if isinstance(parent, cst.Arg) else None
        if isinstance(call, cst.Call) and not _fills_any(call):
            return True
    return False


def _fills_any(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in FILLING_METHODS
