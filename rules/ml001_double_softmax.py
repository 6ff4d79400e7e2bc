"""ML001: an already-normalized output fed to a loss that normalizes its input itself."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, ModelSubject, Related, Rule, replace
from mllint.semantic import knowledge
from mllint.semantic.activations import Normalization, activation_input, model_output, normalization
from mllint.semantic.losses import computed_losses, loss_input
from mllint.semantic.subjects import called_model, model_output_call
from mllint.semantic.values import argument

#: (loss family, normalization of its input) -> what goes wrong
PROBLEMS = {
    ("softmax", "softmax"): "softmax output fed to a loss that applies log_softmax itself: softmax is applied twice",
    ("softmax", "log_softmax"): "log_softmax output fed to a loss that applies log_softmax itself",
    ("sigmoid", "sigmoid"): "sigmoid output fed to a loss that applies sigmoid itself: sigmoid is applied twice",
    ("sigmoid", "softmax"): "softmax output fed to a loss that applies sigmoid to logits",
    ("log-prob", "softmax"): "softmax probabilities fed to a loss that expects log-probabilities (use log_softmax)",
}


class DoubleSoftmax(Rule):
    """## What it does
    Finds an already-normalized output (softmax, log_softmax or sigmoid, applied inline, through a
    variable, or at the end of a model, in this file or another: a PyTorch `forward`, a Keras
    `call`, a Flax `__call__` run through `model.apply`, the last layer of a `Sequential` or of a
    Keras functional model) fed to a loss that normalizes its input itself: `CrossEntropyLoss`,
    `F.cross_entropy`, `BCEWithLogitsLoss`, `optax.softmax_cross_entropy`, a Keras loss built with
    `from_logits=True` (called, or given to `model.compile`); and softmax probabilities fed to
    `NLLLoss`, which expects log-probabilities.

    ## Why is this bad?
    The loss squashes the probabilities a second time: its gradients shrink towards zero as the
    model grows confident, so training plateaus early at a worse accuracy, with no error and a loss
    curve that looks merely slow. `NLLLoss` on probabilities is not a log-likelihood at all.

    ## Example
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return F.softmax(self.fc(x), dim=1)

    loss = nn.CrossEntropyLoss()(model(x), y)
    ```

    ## Use instead
    ```python
    class Net(nn.Module):
        def forward(self, x):
            return self.fc(x)  # logits; apply softmax only where probabilities are needed

    loss = nn.CrossEntropyLoss()(model(x), y)
    ```
    or keep `log_softmax` in the model and train with `nn.NLLLoss()`.
    """

    code = "ML001"
    name = "double-softmax"
    summary = "Softmax/sigmoid output fed to a loss that applies its own normalization"
    triggers = ("loss", "Loss", "criterion", "cross_entropy", "from_logits", "optax")
    dynamic_check = "output-normalization"

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            family = _loss_family(ctx, call)
            if family is None:
                continue
            prediction = loss_input(call)
            found = normalization(ctx, prediction) if prediction is not None else None
            if found is None or (family, found.kind) not in PROBLEMS:
                continue
            note = Related(found.node, f"{found.kind} applied here", None if found.ctx is ctx else found.ctx)
            fix = _unwrap(ctx, found, prediction)
            yield Finding(call, PROBLEMS[family, found.kind], (note,), fix, _subject(ctx, prediction))
        yield from _keras(ctx)


def _unwrap(ctx: ModuleContext, found: Normalization, prediction: cst.BaseExpression) -> Fix | None:
    """Remove the activation: at the loss call (safe), or at the end of a ``forward`` in this file
    (unsafe: callers of the model may rely on its probabilities)."""
    if found.ctx is not ctx or not isinstance(found.node, cst.Call):
        return None
    inner = activation_input(ctx, found.node)
    if inner is None:
        return None
    edit = (replace(found.node, inner),)
    if found.node is prediction:
        return Fix(f"Pass the logits to the loss: remove the {found.kind}", edit)
    returned = ctx.parent(found.node)
    function = ctx.enclosing_function(found.node)
    if isinstance(returned, cst.Return) and function is not None and function.name.value == "forward":
        return Fix(
            f"Return logits from `forward`: remove the {found.kind} (review code that calls the model for "
            "probabilities: it must now apply the activation itself)",
            edit,
            safe=False,
        )
    return None


def _loss_family(ctx: ModuleContext, call: cst.Call) -> str | None:
    """The normalization family of the loss a call computes."""
    for qualname in sorted(computed_losses(ctx, call)):
        if qualname in knowledge.LOGIT_LOSSES:
            return knowledge.LOGIT_LOSSES[qualname]
        if qualname in knowledge.LOG_PROB_LOSSES:
            return "log-prob"
    return None


def _subject(ctx: ModuleContext, prediction: cst.BaseExpression) -> ModelSubject | None:
    """The model whose output the loss takes as it is: its traced output decides the finding."""
    model_call = model_output_call(ctx, prediction)
    model = called_model(ctx, model_call) if model_call is not None else None
    return ModelSubject(model) if model is not None else None


def _keras(ctx: ModuleContext) -> Iterator[Finding]:
    """A Keras loss built with ``from_logits=True`` given softmax / sigmoid outputs: by
    ``model.compile(loss=...)`` of a model that ends normalized, or called on them."""
    if "from_logits" not in ctx.source:
        return
    for call in ctx.calls:
        if isinstance(call.func, cst.Attribute) and call.func.attr.value == "compile":
            # reported at the loss: that is what the fix changes
            where = argument(call, "loss", 1)
            family = _keras_logit_loss(ctx, where) if where is not None else None
            found = model_output(ctx, call.func.value) if family is not None else None
            message = "the model ends in {kind} but is compiled with a loss built with `from_logits=True`"
        else:
            where = call
            family = _keras_logit_loss(ctx, call.func) or _keras_logit_loss(ctx, call)
            prediction = argument(call, "y_pred", 1) if family is not None else None
            found = normalization(ctx, prediction) if prediction is not None else None
            message = "{kind} output fed to a loss built with `from_logits=True`, which applies it again"
        if where is not None and found is not None and (family, found.kind) in PROBLEMS:
            note = Related(found.node, f"{found.kind} applied here", None if found.ctx is ctx else found.ctx)
            yield Finding(where, message.format(kind=found.kind), (note,))


def _keras_logit_loss(ctx: ModuleContext, expr: cst.BaseExpression) -> str | None:
    """The family of a Keras loss built (or called, for the loss functions) with
    ``from_logits=True``: the expression itself, or the variable holding it."""
    construction = expr if isinstance(expr, cst.Call) else None
    if isinstance(expr, cst.Name):
        binding = ctx.reaching_binding(expr)
        value = binding.value if binding is not None and binding.kind == "assign" and not binding.path else None
        construction = value if isinstance(value, cst.Call) else None
    if construction is None:
        return None
    family = knowledge.KERAS_LOGIT_LOSSES.get(knowledge.normalize(ctx.qualname(construction.func) or ""))
    from_logits = argument(construction, "from_logits")
    return family if isinstance(from_logits, cst.Name) and from_logits.value == "True" else None
