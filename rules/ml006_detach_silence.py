"""ML006: gradient flow cut where the loss needs it, often to silence an autograd error."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, ModelSubject, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.names import dotted_name
from mllint.semantic.subjects import called_model
from mllint.semantic.training import without_grad

TENSOR_FACTORIES = {"torch.tensor", "torch.as_tensor", "torch.Tensor", "torch.FloatTensor", "torch.autograd.Variable"}
MAX_DEPTH = 6
#: attributes that leave the autograd graph
CUTS = {"detach", "item", "numpy", "data", "tolist"}


class DetachSilence(Rule):
    """## What it does
    Finds gradient flow cut on the way to the loss: a value re-wrapped as a new leaf with
    `requires_grad=True` (`torch.tensor(loss.item(), requires_grad=True)`) and backpropagated;
    `loss.requires_grad = True` / `loss.requires_grad_()` on a computed loss; `backward()` on a loss
    computed under `torch.no_grad()` or `inference_mode`; a loss term computed from `x.detach()` fed
    through a network, added to a loss that also uses `x` itself.

    ## Why is this bad?
    These are the classic ways to make "element 0 of tensors does not require grad and does not
    have a grad_fn" go away. The error disappears, `backward()` runs, and no parameter of the model
    receives a gradient (or not from that term): the loss stays flat and nothing says why.

    ## Example
    ```python
    with torch.no_grad():
        logits = model(x)
    loss = criterion(logits, y)
    loss.requires_grad = True
    loss.backward()
    ```

    ## Use instead
    ```python
    logits = model(x)
    loss = criterion(logits, y)
    loss.backward()
    ```
    Detaching RL targets (`target_net(s).max(1)[0].detach()`), a GAN discriminator step on
    `fake.detach()`, stop-gradient branches (SimSiam, BYOL), `.item()` for logging and
    `x.detach().requires_grad_()` on inputs for adversarial examples are all fine.
    """

    code = "ML006"
    name = "detach-silence"
    summary = "Gradient flow cut: re-wrapped leaf, forced requires_grad, loss under no_grad, detached term"
    triggers = ("backward",)
    dynamic_check = "gradient-reach"

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        reported: set[cst.CSTNode] = set()
        for call in ctx.calls:
            if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "backward"):
                continue
            loss = call.func.value
            finding = _forced_requires_grad(ctx, loss, call) or _rewrapped_leaf(ctx, loss, call)
            finding = finding or _computedwithout_grad(ctx, loss, call) or _detached_term(ctx, loss, call)
            if finding is not None and finding.node not in reported:
                reported.add(finding.node)
                yield finding


def _binding_value(ctx: ModuleContext, expr: cst.BaseExpression) -> cst.BaseExpression | None:
    if isinstance(expr, cst.Name):
        binding = ctx.reaching_binding(expr)
        if binding is not None and not binding.path and binding.kind == "assign":
            return binding.value
    return None


def _forced_requires_grad(ctx: ModuleContext, loss: cst.BaseExpression, backward: cst.Call) -> Finding | None:
    """``loss.requires_grad = True`` / ``loss.requires_grad_()`` before ``loss.backward()``."""
    name = dotted_name(loss)
    if name is None:
        return None
    scope = ctx.enclosing_function(backward)
    for node in ctx.walk(scope.body if scope else ctx.tree):
        if ctx.order(node) >= ctx.order(backward):
            break
        forced = None
        if isinstance(node, cst.Assign) and _is_true(node.value):
            forced = next((t.target for t in node.targets if _attribute_of(t.target, name, "requires_grad")), None)
        elif isinstance(node, cst.Call) and _attribute_of(node.func, name, "requires_grad_"):
            forced = node if not node.args or _is_true(node.args[0].value) else None
        if forced is not None and not _is_fresh_leaf(ctx, loss):
            return Finding(
                forced,
                "`requires_grad` forced on a computed loss: this silences the autograd error, but no "
                "parameter receives a gradient (the graph was cut before)",
                (Related(backward, "backward() reaches nothing but this tensor"),),
                subject=_subject(ctx, loss, computed_without_grad=False),
            )
    return None


def _rewrapped_leaf(ctx: ModuleContext, loss: cst.BaseExpression, backward: cst.Call) -> Finding | None:
    """``loss = torch.tensor(value, requires_grad=True); loss.backward()``."""
    value = _binding_value(ctx, loss)
    if isinstance(value, cst.Call) and _creates_leaf(ctx, value):
        return Finding(
            value,
            "a new leaf tensor with `requires_grad=True` is backpropagated: gradients stop at this tensor "
            "and never reach the model",
            (Related(backward, "backward() of the re-wrapped value"),),
        )
    return None


def _computedwithout_grad(ctx: ModuleContext, loss: cst.BaseExpression, backward: cst.Call) -> Finding | None:
    value = _binding_value(ctx, loss)
    where = value if value is not None else loss
    if without_grad(ctx, where):
        return Finding(
            backward,
            "backward() on a loss computed under `torch.no_grad()` / `inference_mode`: it has no graph "
            "to the model's parameters",
            subject=_subject(ctx, loss, computed_without_grad=True),
        )
    return None


def _subject(ctx: ModuleContext, loss: cst.BaseExpression, computed_without_grad: bool) -> ModelSubject | None:
    """The one project model the loss is computed from, when running it as the training code does
    decides whether gradients reach it: its forward (or the loss) runs without grad, or nothing on
    the way from the model to the loss leaves the graph."""
    tree = list(_loss_tree(ctx, loss, set(), 0))
    model_calls = {call: called_model(ctx, call) for call in tree if isinstance(call, cst.Call)}
    models = {model for model in model_calls.values() if model is not None}
    if len(models) != 1:
        return None
    without = computed_without_grad or any(without_grad(ctx, call) for call, m in model_calls.items() if m)
    cut = any(isinstance(n, cst.Attribute) and n.attr.value in CUTS for n in tree) or any(
        isinstance(n, cst.Call) and (ctx.qualname(n.func) or "") in TENSOR_FACTORIES for n in tree
    )
    model = models.pop()
    if without:
        return ModelSubject(model, without_grad=True)
    return None if cut else ModelSubject(model)


def _detached_term(ctx: ModuleContext, loss: cst.BaseExpression, backward: cst.Call) -> Finding | None:
    """A loss that uses ``x`` and also a network's output on ``x.detach()``: that term is dead."""
    tree = list(_loss_tree(ctx, loss, set(), 0))
    live = {dotted_name(n) for n in tree if isinstance(n, (cst.Name, cst.Attribute)) and not _is_detached(ctx, n)}
    for node in tree:
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        if node.func.attr.value != "detach" or not _fed_to_a_network(ctx, node):
            continue
        source = dotted_name(node.func.value)
        if source is not None and source in live:
            return Finding(
                node,
                f"this term of the loss is computed from `{source}.detach()` while the loss also trains "
                f"through `{source}`: the detached term sends no gradient where the rest does",
                (Related(backward, "the loss is backpropagated here"),),
            )
    return None


def _loss_tree(ctx: ModuleContext, expr: cst.CSTNode, seen: set[cst.CSTNode], depth: int) -> Iterator[cst.CSTNode]:
    """Every node the value of ``expr`` is computed from, through names and ``self`` attributes."""
    if depth > MAX_DEPTH or expr in seen:
        return
    seen.add(expr)
    for node in ctx.walk(expr):
        yield node
        for value in _definitions(ctx, node):
            yield from _loss_tree(ctx, value, seen, depth + 1)


def _definitions(ctx: ModuleContext, node: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(node, cst.Name):
        binding = ctx.reaching_binding(node)
        return [binding.value] if binding is not None and binding.kind == "assign" else []
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        class_node = ctx.enclosing_class(node)
        if class_node is None:
            return []
        # the method's own last assignment before the use, else what the other methods assign
        own = ctx.scopes[ctx.enclosing_function(node)].self_attributes.get(node.attr.value, [])
        before = [b for b in own if b.node is not None and ctx.order(b.node) < ctx.order(node)]
        if before:
            return [max(before, key=lambda b: ctx.order(b.node)).value]
        return [
            b.value
            for function in ctx.functions
            if ctx.enclosing_class(function.body) is class_node
            for b in ctx.scopes[function].self_attributes.get(node.attr.value, [])
            if b.kind == "assign"
        ]
    return []


def _is_detached(ctx: ModuleContext, node: cst.CSTNode) -> bool:
    parent = ctx.parent(node)
    return isinstance(parent, cst.Attribute) and parent.attr.value in ("detach", "data")


def _fed_to_a_network(ctx: ModuleContext, detach: cst.Call) -> bool:
    arg = ctx.parent(detach)
    call = ctx.parent(arg) if isinstance(arg, cst.Arg) else None
    if not isinstance(call, cst.Call) or ctx.project is None:
        return False
    # a module instance: a project model, or a class from elsewhere that is not a loss
    return any(
        ctx.project.is_model_class(q) or (q.rsplit(".", 1)[-1][:1].isupper() and not knowledge.is_loss(q))
        for q in ctx.project.infer(ctx, call.func)
    )


def _creates_leaf(ctx: ModuleContext, call: cst.Call) -> bool:
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_":
        inner = call.func.value
        return isinstance(inner, cst.Call) and (ctx.qualname(inner.func) or "") in TENSOR_FACTORIES
    if (ctx.qualname(call.func) or "") not in TENSOR_FACTORIES:
        return False
    return any(
        arg.keyword is not None and arg.keyword.value == "requires_grad" and _is_true(arg.value) for arg in call.args
    )


def _is_fresh_leaf(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
    """A tensor made from data (not computed from the model): requiring its gradient is legitimate."""
    value = _binding_value(ctx, expr)
    if not isinstance(value, cst.Call):
        return False
    qualname = ctx.qualname(value.func) or ""
    return qualname in TENSOR_FACTORIES or qualname.startswith(
        ("torch.zeros", "torch.ones", "torch.rand", "torch.empty")
    )


def _attribute_of(expr: cst.BaseExpression, owner: str, attribute: str) -> bool:
    return isinstance(expr, cst.Attribute) and expr.attr.value == attribute and dotted_name(expr.value) == owner


def _is_true(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"
