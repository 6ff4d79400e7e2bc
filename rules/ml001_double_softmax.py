"""ML001: an already-normalized output fed to a loss that normalizes its input itself."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, ModelSubject, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.activations import normalization
from mllint.semantic.subjects import called_model, model_output_call

#: (loss family, normalization of its input) -> what goes wrong
PROBLEMS = {
    ("softmax", "softmax"): "softmax output fed to a loss that applies log_softmax itself: softmax is applied twice",
    ("softmax", "log_softmax"): "log_softmax output fed to a loss that applies log_softmax itself",
    ("sigmoid", "sigmoid"): "sigmoid output fed to a loss that applies sigmoid itself: sigmoid is applied twice",
    ("sigmoid", "softmax"): "softmax output fed to a loss that applies sigmoid to logits",
    ("log-prob", "softmax"): "softmax probabilities fed to a loss that expects log-probabilities (use log_softmax)",
}
KERAS_LOSSES = ("CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy")
KERAS_LOSS_FUNCTIONS = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy")


class DoubleSoftmax(Rule):
    """## What it does
    Finds an already-normalized output (softmax, log_softmax or sigmoid, applied inline, through a
    variable, or at the end of a model's `forward`, in this file or another) fed to a loss that
    normalizes its input itself: `CrossEntropyLoss`, `F.cross_entropy`, `BCEWithLogitsLoss`, Keras
    losses built with `from_logits=True`, `optax.softmax_cross_entropy`; and softmax probabilities
    fed to `NLLLoss`, which expects log-probabilities.

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
            argument = _input_argument(call)
            found = normalization(ctx, argument) if argument is not None else None
            if found is None or (family, found.kind) not in PROBLEMS:
                continue
            note = Related(found.node, f"{found.kind} applied here", None if found.ctx is ctx else found.ctx)
            yield Finding(call, PROBLEMS[family, found.kind], (note,), _subject(ctx, argument))
        yield from _keras(ctx)


def _loss_family(ctx: ModuleContext, call: cst.Call) -> str | None:
    """The normalization family of the loss a call computes (not of one it constructs)."""
    assert ctx.project is not None
    direct = knowledge.normalize(ctx.qualname(call.func) or "")
    if direct.rsplit(".", 1)[-1][:1].isupper():
        return None  # ``nn.CrossEntropyLoss()`` builds the loss object; calling that object computes it
    for qualname in {direct} | {knowledge.normalize(q) for q in ctx.project.infer(ctx, call.func)}:
        if qualname in knowledge.LOGIT_LOSSES:
            return knowledge.LOGIT_LOSSES[qualname]
        if qualname in knowledge.LOG_PROB_LOSSES:
            return "log-prob"
    return None


def _subject(ctx: ModuleContext, argument: cst.BaseExpression) -> ModelSubject | None:
    """The model whose output the loss takes as it is: its traced output decides the finding."""
    model_call = model_output_call(ctx, argument)
    model = called_model(ctx, model_call) if model_call is not None else None
    return ModelSubject(model) if model is not None else None


def _input_argument(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in ("input", "logits", "predictions", "preds"):
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[0].value if positional else None


def _keras(ctx: ModuleContext) -> Iterator[Finding]:
    """A Keras model ending in softmax/sigmoid compiled with a ``from_logits=True`` loss."""
    if "from_logits" not in ctx.source:
        return
    activations = [call for call in ctx.calls if _keras_activation(ctx, call)]
    if not activations:
        return
    for call in ctx.calls:
        qualname = ctx.qualname(call.func) or ""
        if not qualname.endswith(KERAS_LOSSES + KERAS_LOSS_FUNCTIONS):
            continue
        if any(
            arg.keyword is not None and arg.keyword.value == "from_logits" and _is_true(arg.value) for arg in call.args
        ):
            yield Finding(
                call,
                "the model already ends in softmax/sigmoid but the loss is built with `from_logits=True`",
                (Related(activations[-1], "the model's output activation"),),
            )


def _keras_activation(ctx: ModuleContext, call: cst.Call) -> bool:
    qualname = ctx.qualname(call.func) or ""
    if not qualname.startswith(("keras.", "tensorflow.keras.", "tf.keras.")):
        return False
    if qualname.endswith((".Softmax",)):
        return True
    for arg in call.args:
        is_activation = (arg.keyword is not None and arg.keyword.value == "activation") or (
            qualname.endswith(".Activation") and arg.keyword is None
        )
        if (
            is_activation
            and isinstance(arg.value, cst.SimpleString)
            and arg.value.evaluated_value in ("softmax", "sigmoid")
        ):
            return True
    return False


def _is_true(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"
