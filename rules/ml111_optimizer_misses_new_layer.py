"""ML111: a submodule replaced after the optimizer was built from the model's parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.cfg import ControlFlowGraph, Node
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import walk

PARAMETER_METHODS = {"parameters", "named_parameters"}
#: calls that only look at the optimizer
DISPLAY_FUNCTIONS = {"print", "repr", "str", "type", "id", "isinstance", "len"}


@dataclass(frozen=True)
class Construction:
    node: Node
    optimizer: str
    #: the modules whose parameters it holds (``model``, ``model.backbone``)
    owners: frozenset[str]


class OptimizerMissesNewLayer(Rule):
    """## What it does
    Finds a submodule replaced (`model.fc = nn.Linear(...)`) after an optimizer was built from
    `model.parameters()`, when that optimizer is then used to train.

    ## Why is this bad?
    The optimizer holds the parameter tensors it was given, not the model. The new layer's weights
    are not among them: the optimizer keeps stepping the old layer's (now detached) parameters and
    the new head never changes from its random initialization. Training runs, the loss moves a
    little through the other layers, and accuracy stays poor.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    model.fc = nn.Linear(512, num_classes)
    train(model, optimizer, loader)
    ```

    ## Use instead
    ```python
    model.fc = nn.Linear(512, num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train(model, optimizer, loader)
    ```
    An optimizer rebuilt (or given `add_param_group`) after the replacement, a replaced part the
    optimizer never covered, and parameter-free layers (`nn.Identity()`) are not reported.
    """

    code = "ML111"
    name = "optimizer-misses-new-layer"
    summary = "Submodule replaced after the optimizer was built from model.parameters(): it never trains"
    severity = "error"
    triggers = ("parameters(",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for owner in [None, *ctx.functions]:
            found = (_construction(ctx, assign) for assign in _assignments(ctx, owner))
            constructions = [construction for construction in found if construction is not None]
            if not constructions:
                continue
            cfg = ctx.cfg(owner)
            for construction in constructions:
                yield from _replacements_after(ctx, cfg, construction)


def _assignments(ctx: ModuleContext, owner: cst.FunctionDef | None) -> list[cst.Assign]:
    found = {
        binding.node: None
        for bindings in ctx.scopes[owner].names.values()
        for binding in bindings
        if isinstance(binding.node, cst.Assign) and isinstance(binding.value, cst.Call)
    }
    return list(found)  # type: ignore[arg-type]


def _construction(ctx: ModuleContext, assign: cst.Assign) -> Construction | None:
    """``opt = SGD(model.parameters(), ...)``: the optimizer's name and the modules it covers."""
    call = assign.value
    qualname = ctx.qualname(call.func) if isinstance(call, cst.Call) else None
    if qualname is None or not knowledge.is_optimizer_class(qualname) or len(assign.targets) != 1:
        return None
    optimizer = dotted_name(assign.targets[0].target)
    owners = frozenset(owner for arg in call.args for owner in _parameter_owners(ctx, arg.value))
    return Construction(assign, optimizer, owners) if optimizer and owners else None


def _parameter_owners(ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> set[str]:
    """Receivers of ``.parameters()`` in the expression, through one level of local names."""
    owners = set()
    for node in walk(expr):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if node.func.attr.value in PARAMETER_METHODS and not node.args:
                owner = dotted_name(node.func.value)
                if owner is not None:
                    owners.add(owner)
        elif isinstance(node, cst.Name) and depth == 0:
            binding = ctx.reaching_binding(node)
            if binding is not None and binding.kind == "assign" and not binding.path:
                owners |= _parameter_owners(ctx, binding.value, depth + 1)
    return owners


def _replacements_after(ctx: ModuleContext, cfg: ControlFlowGraph, construction: Construction) -> Iterator[Finding]:
    rebuilds = {node for node in cfg.graph if node is not construction.node and _rebuilds(node, construction.optimizer)}
    uses = [node for node in cfg.graph if isinstance(node, cst.CSTNode) and _uses(node, construction.optimizer)]
    missed: list[tuple[Node, str, Node]] = []
    for node in cfg.graph:
        replaced = _replaced_submodule(ctx, node)
        if replaced is None or not any(replaced.startswith(f"{owner}.") for owner in construction.owners):
            continue
        if not cfg.has_path(construction.node, node, avoiding=rebuilds):
            continue
        use = next((u for u in uses if cfg.has_path(node, u, avoiding=rebuilds | {construction.node})), None)
        if use is not None:
            missed.append((node, replaced, use))
    if not missed:
        return
    # one report per optimizer: the first replacement, the others named
    node, replaced, use = min(missed, key=lambda m: ctx.order(m[0]))  # type: ignore[arg-type]
    others = sorted({m[1] for m in missed} - {replaced})
    also = f" (and {', '.join(f'`{o}`' for o in others)})" if others else ""
    yield Finding(
        node,
        f"`{replaced}`{also} is replaced after `{construction.optimizer}` was built from the model's "
        "parameters: the new layer's parameters are not in the optimizer and never train; build the "
        "optimizer after the replacement",
        (Related(construction.node, "the optimizer is built here"), Related(use, "and used here")),
    )


def _replaced_submodule(ctx: ModuleContext, node: Node) -> str | None:
    """``model.fc = nn.Linear(...)`` / ``model.classifier[1] = ...``: the submodule path, when the new
    value is a module with parameters."""
    if not isinstance(node, cst.Assign) or len(node.targets) != 1:
        return None
    target = node.targets[0].target
    if isinstance(target, cst.Subscript):
        target = target.value
    path = dotted_name(target) if isinstance(target, cst.Attribute) else None
    if path is None or path.startswith("self.") or not _new_module_with_parameters(ctx, node.value):
        return None
    return path


def _new_module_with_parameters(ctx: ModuleContext, value: cst.BaseExpression) -> bool:
    if not isinstance(value, cst.Call) or ctx.project is None:
        return False
    classes = ctx.project.infer(ctx, value)
    return any(_has_parameters(ctx, q) for q in classes)


def _has_parameters(ctx: ModuleContext, qualname: str) -> bool:
    assert ctx.project is not None
    normalized = knowledge.normalize(qualname)
    if normalized.startswith("torch.nn.") and normalized.count(".") == 2:
        return not knowledge.is_parameterless_layer(normalized)
    return ctx.project.is_model_class(qualname) or knowledge.is_mode_dependent(qualname) is True


def _rebuilds(node: Node, optimizer: str) -> bool:
    """The optimizer is rebuilt, or given the new parameters."""
    if isinstance(node, cst.Assign):
        return any(dotted_name(t.target) == optimizer for t in node.targets)
    return isinstance(node, cst.BaseSmallStatement) and any(
        isinstance(n, cst.Call)
        and isinstance(n.func, cst.Attribute)
        and n.func.attr.value == "add_param_group"
        and dotted_name(n.func.value) == optimizer
        for n in walk(node)
    )


def _uses(node: cst.CSTNode, optimizer: str) -> bool:
    """The optimizer steps, or is handed to code (a training function, a wrapper)."""
    if not isinstance(node, cst.BaseSmallStatement):
        return False
    for inner in walk(node):
        if not isinstance(inner, cst.Call):
            continue
        method = inner.func.attr.value if isinstance(inner.func, cst.Attribute) else None
        if method == "step" and dotted_name(inner.func.value) == optimizer:  # type: ignore[union-attr]
            return True
        passed = any(dotted_name(arg.value) == optimizer for arg in inner.args)
        if passed and dotted_name(inner.func) not in DISPLAY_FUNCTIONS:
            return True
    return False
