"""ML114: the label column left in the feature matrix."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.dataflow import estimator_classes
from mllint.semantic.frames import column_of, columns_of, constant_string
from mllint.semantic.values import argument

FIT_METHODS = {"fit", "fit_transform", "fit_predict", "partial_fit"}
#: models that may choose their input columns themselves (a ColumnTransformer inside)
COLUMN_SELECTING = ("sklearn.pipeline.", "sklearn.compose.", "imblearn.pipeline.")


class TargetInFeatures(Rule):
    """## What it does
    Finds a model fit (or cross-validated) on features `X` and labels `y` where `y` is a column
    of a pandas frame and `X` still holds that column: `X = df` with `y = df["target"]`, a `drop`
    that removes other columns, or a column list built from `df.columns` that does not leave the
    target out.

    It follows straight-line assignments, row selections (`df.sample()`, `df.loc[mask]`) and
    constants naming the column, and stays quiet when the column list cannot be read, when the
    target is removed from the frame (`df.pop("target")`, `del df["target"]`), and when the model
    is a pipeline, which may select its own columns (`ColumnTransformer`).

    ## Why is this bad?
    The model can read the answer off its input: training and test scores look excellent, and the
    model is useless on new data, where the label is not known. Nothing warns: the feature matrix
    simply has one column too many.

    ## Example
    ```python
    features = [c for c in df.columns if c != "id"]
    model.fit(df[features], df["price"])
    ```

    ## Use instead
    ```python
    features = [c for c in df.columns if c not in ("id", "price")]
    model.fit(df[features], df["price"])
    ```
    """

    code = "ML114"
    name = "target-in-features"
    summary = "The label column left in the feature matrix"
    triggers = ("fit", "cross_val")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for call in ctx.calls:
            pair = _features_and_labels(ctx, call)
            if pair is None:
                continue
            features, labels = pair
            target = column_of(ctx, labels)
            if target is None:
                continue
            frame, column = target
            held = columns_of(ctx, features)
            if held is None or held.root != frame or not held.holds(column) or _removed(ctx, call, frame, column):
                continue
            yield Finding(
                call,
                f"the target column `{column}` is also in the features: the model reads the label from its input",
                (Related(labels, "the labels are this column"),),
            )


def _features_and_labels(ctx: ModuleContext, call: cst.Call) -> tuple[cst.BaseExpression, cst.BaseExpression] | None:
    """(X, y) of ``model.fit(X, y)`` and ``cross_val_score(model, X, y)``, for a model that sees
    every column of ``X`` (a pipeline may select its columns itself)."""
    qualname = knowledge.normalize(ctx.qualname(call.func) or "")
    if qualname in knowledge.SKLEARN_CV:
        model, features, labels = argument(call, "estimator", 0), argument(call, "X", 1), argument(call, "y", 2)
    elif isinstance(call.func, cst.Attribute) and call.func.attr.value in FIT_METHODS:
        model, features, labels = call.func.value, argument(call, "X", 0), argument(call, "y", 1)
    else:
        return None
    if model is None or features is None or labels is None:
        return None
    classes = estimator_classes(ctx, model)
    if not classes or any(q in knowledge.SKLEARN_PIPELINES or q.startswith(COLUMN_SELECTING) for q in classes):
        return None
    return features, labels


def _removed(ctx: ModuleContext, site: cst.Call, frame: str, column: str) -> bool:
    """``del frame[column]``, ``frame.pop(column)`` or an in-place drop in the scope: the frame may
    no longer hold the column (order is not tracked: quiet either way)."""
    table = ctx.scope_of(site)
    for call in table.calls:
        func = call.func
        if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == frame):
            continue
        if func.attr.value == "pop" and call.args and constant_string(ctx, call.args[0].value) == column:
            return True
        inplace = argument(call, "inplace")
        if func.attr.value == "drop" and isinstance(inplace, cst.Name) and inplace.value == "True":
            return True
    function = ctx.enclosing_function(site)
    body = function if function is not None else ctx.tree
    for node in ctx.walk(body):
        if isinstance(node, cst.Del) and isinstance(node.target, cst.Subscript):
            owner = node.target.value
            if isinstance(owner, cst.Name) and owner.value == frame:
                return True
    return False
