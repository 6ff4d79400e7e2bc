"""Which normalization (softmax, log_softmax, sigmoid) produced a tensor, if any; ``"logits"``
when the value comes straight out of an affine layer (``nn.Linear``, ``nn.Conv2d``, ``F.linear``)
with nothing applied after it.

Followed through variables (the assignment that reaches the use), shape-only tensor methods,
activation modules (``self.act = nn.Softmax(dim=1)``), ``nn.Sequential`` containers ending in
one, and models whose ``forward`` returns a normalized value on every path, in any file of the
project, inherited forwards included.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge

#: tensor methods that keep the values (and so the normalization) of their receiver
SHAPE_METHODS = {
    "view", "reshape", "squeeze", "unsqueeze", "contiguous", "float", "double", "half", "to", "cpu", "cuda",
    "permute", "transpose", "flatten", "clone", "type_as", "view_as", "expand", "expand_as",
}  # fmt: skip
MAX_DEPTH = 12


@dataclass(frozen=True)
class Normalization:
    kind: str
    #: where the activation is applied
    node: cst.CSTNode
    ctx: ModuleContext


Element = int | str | None


def normalization(
    ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0, element: Element = None
) -> Normalization | None:
    """The normalization last applied to ``expr``'s value (to its ``element``: a tuple position or
    a dict key, when the value is a container), when every way to it applies one."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(expr, cst.Call):
        return _call(ctx, expr, depth) if element is None else model_output(ctx, expr.func, depth, element)
    if isinstance(expr, cst.Name):
        return _name(ctx, expr, depth, element)
    if isinstance(expr, cst.Subscript):
        return normalization(ctx, expr.value, depth + 1, _key(expr) if element is None else None)
    if isinstance(expr, (cst.Tuple, cst.List)) and isinstance(element, int) and element < len(expr.elements):
        return normalization(ctx, expr.elements[element].value, depth + 1)
    if isinstance(expr, cst.Dict) and isinstance(element, str):
        for item in expr.elements:
            if isinstance(item, cst.DictElement) and _string(item.key) == element:
                return normalization(ctx, item.value, depth + 1)
    return None


def _name(ctx: ModuleContext, name: cst.Name, depth: int, element: Element) -> Normalization | None:
    binding = ctx.reaching_binding(name)
    if binding is not None:
        if binding.kind != "assign" or len(binding.path) > 1 or (binding.path and element is not None):
            return None
        return normalization(ctx, binding.value, depth + 1, binding.path[0] if binding.path else element)
    return _parameter(ctx, name, depth, element)


def _parameter(ctx: ModuleContext, name: cst.Name, depth: int, element: Element) -> Normalization | None:
    """A parameter: what the project's call sites pass for it."""
    from mllint.semantic.values import argument

    function = ctx.enclosing_function(name)
    info = ctx.project.function_info(function) if ctx.project and function else None
    if info is None:
        return None
    positional = [p.name.value for p in [*info.node.params.posonly_params, *info.node.params.params]]
    if name.value not in positional and all(p.name.value != name.value for p in info.params):
        return None
    offset = 1 if info.class_qualname and positional and positional[0] in ("self", "cls") else 0
    index = positional.index(name.value) - offset if name.value in positional else None
    for caller_ctx, call in ctx.project.call_sites(info):
        passed = argument(call, name.value, index)
        found = normalization(caller_ctx, passed, depth + 1, element) if passed is not None else None
        if found is not None:
            return found
    return None


def _key(subscript: cst.Subscript) -> Element:
    if len(subscript.slice) != 1 or not isinstance(subscript.slice[0].slice, cst.Index):
        return None
    value = subscript.slice[0].slice.value
    if isinstance(value, cst.Integer):
        return int(value.value)
    return _string(value)


def _string(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        evaluated = expr.evaluated_value
        return evaluated if isinstance(evaluated, str) else None
    return None


def activation_of_module(ctx: ModuleContext, expr: cst.BaseExpression) -> str | None:
    """The output kind of an activation or affine module instance (``nn.Softmax(dim=1)``,
    ``self.softmax``, ``self.fc``)."""
    assert ctx.project is not None
    # every class the attribute may hold must agree (``nn.Softmax() if probs else nn.Identity()``
    # says nothing)
    kinds = {knowledge.output_kind(qualname) for qualname in ctx.project.infer(ctx, expr)}
    return kinds.pop() if len(kinds) == 1 else None


def _call(ctx: ModuleContext, call: cst.Call, depth: int) -> Normalization | None:
    qualname = ctx.qualname(call.func)
    if qualname is not None:
        kind = knowledge.output_kind(qualname)
        if kind is not None:
            return Normalization(kind, call, ctx)
        if knowledge.normalize(qualname) in ("torch.log", "numpy.log") and call.args:
            inner = normalization(ctx, call.args[0].value, depth + 1)
            return Normalization("log_softmax", call, ctx) if inner and inner.kind == "softmax" else None
    kind = activation_of_module(ctx, call.func)
    if kind is not None:
        return Normalization(kind, call, ctx)
    layer = _construction(ctx, call.func)
    if layer is not None and (kind := keras_layer_kind(ctx, layer)) is not None:
        return Normalization(kind, layer, ctx)  # ``Dense(10, activation="softmax")(x)``
    if isinstance(call.func, cst.Attribute):
        method = call.func.attr.value
        if method in knowledge.ACTIVATION_METHODS and qualname is None and not _on_self(call.func):
            return Normalization(knowledge.ACTIVATION_METHODS[method], call, ctx)
        if method in SHAPE_METHODS:
            return normalization(ctx, call.func.value, depth + 1)
        if method == "log" and not call.args:
            inner = normalization(ctx, call.func.value, depth + 1)
            return Normalization("log_softmax", call, ctx) if inner and inner.kind == "softmax" else None
        if method == "apply" and qualname is None:
            # ``model.apply(variables, x)``: a Flax module's ``__call__``
            return model_output(ctx, call.func.value, depth)
    return model_output(ctx, call.func, depth)


def activation_input(ctx: ModuleContext, call: cst.Call) -> cst.BaseExpression | None:
    """What a direct activation call normalizes: ``x`` of ``F.softmax(x, 1)``, ``x.softmax(1)``,
    ``self.softmax(x)``; None for anything else."""
    qualname = ctx.qualname(call.func)
    functional = qualname is not None and knowledge.activation_kind(qualname) is not None
    if functional or activation_of_module(ctx, call.func) is not None:
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        keyword = [arg.value for arg in call.args if arg.keyword is not None and arg.keyword.value == "input"]
        inputs = positional[:1] or keyword
        return inputs[0] if inputs else None
    if isinstance(call.func, cst.Attribute) and call.func.attr.value in knowledge.ACTIVATION_METHODS:
        return call.func.value if qualname is None and not _on_self(call.func) else None
    return None


def _on_self(attribute: cst.Attribute) -> bool:
    """``self.softmax(x)`` calls a submodule, not the tensor method ``x.softmax()``."""
    return isinstance(attribute.value, cst.Name) and attribute.value.value == "self"


#: the method that computes a model's output: PyTorch, Keras, Flax
OUTPUT_METHODS = ("forward", "call", "__call__")


def model_output(
    ctx: ModuleContext, model: cst.BaseExpression, depth: int = 0, element: Element = None
) -> Normalization | None:
    """What calling the model held by ``model`` returns: normalized when its ``forward`` /
    ``call`` / ``__call__`` (or its ``Sequential``, or a Keras functional model's outputs) ends
    normalized."""
    project = ctx.project
    assert project is not None
    if depth > MAX_DEPTH:
        return None
    container = _container_output(ctx, model, depth) if element is None else None
    if container is not None:
        return container
    built = _built_by_function(ctx, model, depth, element)
    if built is not None:
        return built
    for qualname in project.infer(ctx, model):
        if not project.is_model_class(qualname):
            continue
        method = next((m for name in OUTPUT_METHODS if (m := project.method(qualname, name)) is not None), None)
        table = method.ctx.scopes.get(method.node) if method is not None else None
        if method is None or table is None or not table.returns:
            continue
        found = [normalization(method.ctx, value, depth + 1, element) for value in table.returns]
        if all(found) and len({n.kind for n in found if n}) == 1:
            return found[-1]
    return None


def _container_output(ctx: ModuleContext, model: cst.BaseExpression, depth: int) -> Normalization | None:
    """``nn.Sequential(..., nn.Softmax(dim=1))``, ``keras.Sequential([..., Dense(3, activation=
    "softmax")])`` (layers added later with ``model.add`` included) or ``keras.Model(inputs,
    outputs)``, held in a variable or ``self`` attribute."""
    construction = _construction(ctx, model)
    if construction is None:
        return None
    container = knowledge.normalize(ctx.qualname(construction.func) or "")
    if container == "torch.nn.Sequential" and construction.args:
        last = construction.args[-1].value
        if isinstance(last, cst.Call):
            kind = knowledge.output_kind(ctx.qualname(last.func) or "")
            return Normalization(kind, last, ctx) if kind is not None else None
    if container == "keras.Sequential":
        layers = construction.args[0].value if construction.args else None
        listed = layers.elements[-1].value if isinstance(layers, cst.List) and layers.elements else None
        last = _last_added(ctx, model) or listed
        kind = keras_layer_kind(ctx, last) if isinstance(last, cst.Call) else None
        return Normalization(kind, last, ctx) if kind is not None and last is not None else None
    if container == "keras.Model":
        from mllint.semantic.values import argument

        outputs = argument(construction, "outputs", 1)
        return normalization(ctx, outputs, depth + 1) if outputs is not None else None
    return None


def _built_by_function(
    ctx: ModuleContext, model: cst.BaseExpression, depth: int, element: Element
) -> Normalization | None:
    """A model returned by a project function (``model = build_model(...)``): what every model
    it returns outputs."""
    from mllint.semantic.project import FunctionInfo

    assert ctx.project is not None
    construction = _construction(ctx, model)
    callee = ctx.project.resolve_callee(ctx, construction) if construction is not None else None
    table = callee.ctx.scopes.get(callee.node) if isinstance(callee, FunctionInfo) else None
    if table is None or not table.returns:
        return None
    found = [model_output(callee.ctx, value, depth + 1, element) for value in table.returns]
    return found[-1] if all(found) and len({n.kind for n in found if n}) == 1 else None


def _last_added(ctx: ModuleContext, model: cst.BaseExpression) -> cst.BaseExpression | None:
    """The last layer given to ``model.add(layer)`` for a Sequential held in a variable."""
    if not isinstance(model, cst.Name):
        return None
    added = [
        call.args[0].value
        for call in ctx.scope_of(model).calls
        if isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "add"
        and isinstance(call.func.value, cst.Name)
        and call.func.value.value == model.value
        and call.args
    ]
    return added[-1] if added else None


def keras_layer_kind(ctx: ModuleContext, layer: cst.Call) -> str | None:
    """The normalization a Keras layer construction applies: ``layers.Softmax()``,
    ``Dense(3, activation="softmax")``, ``Activation(tf.nn.sigmoid)``."""
    from mllint.semantic.values import argument

    qualname = knowledge.normalize(ctx.qualname(layer.func) or "")
    if not qualname.startswith("keras."):
        return None
    kind = knowledge.output_kind(qualname)
    if kind is not None:
        return kind
    activation = argument(layer, "activation", 0 if qualname == "keras.layers.Activation" else None)
    if activation is None:
        return None
    name = _string(activation)
    if name is not None:
        return knowledge.KERAS_ACTIVATION_NAMES.get(name)
    return knowledge.output_kind(ctx.qualname(activation) or "")


def _construction(ctx: ModuleContext, expr: cst.BaseExpression) -> cst.Call | None:
    if isinstance(expr, cst.Call):
        return expr
    if isinstance(expr, cst.Name):
        binding = ctx.reaching_binding(expr)
        value = binding.value if binding is not None and not binding.path else None
        return value if isinstance(value, cst.Call) else None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
        class_node = ctx.enclosing_class(expr)
        if class_node is None:
            return None
        for statement in ctx.walk(class_node):
            if isinstance(statement, cst.Assign) and isinstance(statement.value, cst.Call):
                for target in statement.targets:
                    if isinstance(target.target, cst.Attribute) and target.target.attr.value == expr.attr.value:
                        return statement.value
    return None
