"""ML115: an estimator or a preprocessor fit on test data."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Rule
from mllint.semantic.dataflow import DataFlow, Value, estimator_classes, fitted_preprocessor, names_in
from mllint.semantic.values import argument

FIT_METHODS = {"fit", "fit_transform", "fit_predict", "partial_fit"}
#: estimators fit to describe the data they are given (embeddings for plots, clusters):
#: fitting them on test data is analysis, not training
DESCRIPTIVE = ("sklearn.manifold.", "sklearn.cluster.", "sklearn.mixture.")
#: held-out parts meant to be fit on: calibration sets, blending sets, validation sets
FIT_ON_HELD_OUT = {"val", "valid", "validation", "calib", "calibration", "cal", "dev", "blend", "meta", "stack"}
WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


class FitOnTest(Rule):
    """## What it does
    Finds a model or a preprocessor fit (`fit`, `fit_transform`, `fit_predict`, `partial_fit`) on
    test data: the held-out part of a `train_test_split` or of a cross-validation split, followed
    through the variables computed from it, or, when the data does not come from a split at all,
    data whose variables are named as test data (`X_test = load("test.csv")`).

    A name never overrides the data flow: `X_test_fold = X[train_idx]` is training data. It
    stays quiet on data that mixes training and test rows (a final refit on everything), on
    held-out sets named as validation or calibration sets (fitting a calibrator or a blender on
    them is their purpose), and on descriptive fits (t-SNE, clustering) used to look at the data.
    A preprocessor fit on a split's test part is reported by ML007, not twice.

    ## Why is this bad?
    A model or a scaler fit on the test rows has seen the answers it is then scored on: the test
    metric is optimistic, or meaningless when the scaler is refit on test data and maps it
    differently from the training data the model learned on. Nothing fails; the number is wrong.

    ## Example
    ```python
    scaler = RobustScaler()
    X_train_s = scaler.fit_transform(X_train)
    X_test_s = scaler.fit_transform(X_test)
    ```

    ## Use instead
    ```python
    scaler = RobustScaler()
    X_train_s = scaler.fit_transform(X_train)
    X_test_s = scaler.transform(X_test)
    ```
    """

    code = "ML115"
    name = "fit-on-test"
    summary = "Estimator or preprocessor fit on test data"
    triggers = ("fit",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for table in ctx.scopes.values():
            flow: DataFlow | None = None
            for call in table.calls:
                data = _fitted_data(ctx, call)
                if data is None:
                    continue
                flow = flow or DataFlow(ctx, table)
                test = _held_out(flow, flow.roots(data)) if flow.test_bindings or flow.train_bindings else None
                if test is None and not _in_test_case(ctx, call):
                    test = _spelled_as_test(flow, data)
                if not test or _reported_as_leakage(ctx, call, flow):
                    continue
                yield Finding(call, f"fit on test data (`{sorted(test)[0]}`): the test score has seen its answers")


def _fitted_data(ctx: ModuleContext, call: cst.Call) -> cst.BaseExpression | None:
    """The data of ``estimator.fit(X, ...)``, for a model or a transformer of a known library."""
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in FIT_METHODS):
        return None
    ancestors = estimator_classes(ctx, call.func.value)
    if not ancestors or any(a.startswith(DESCRIPTIVE) for a in ancestors):
        return None
    return argument(call, "X", 0) or argument(call, "x")


def _held_out(flow: DataFlow, roots: set[Value]) -> set[str] | None:
    """The held-out parts of a split ``roots`` come from (empty: training rows are mixed in or
    the part is meant to be fit on); None when the data comes from no split."""
    if roots & flow.train_bindings:
        return set()
    held_out = {name for name, _ in roots & flow.test_bindings}
    if not held_out:
        return None
    return set() if any(_words(name) & FIT_ON_HELD_OUT for name in held_out) else held_out


def _spelled_as_test(flow: DataFlow, data: cst.BaseExpression) -> set[str]:
    """Names of the data, and of what it is plainly assigned from, spelled as test data
    (``X_test = pd.read_csv(...)``); empty when a name says training data is involved. Unpacking
    and loop targets are not followed: which element a name takes is not known."""
    names: set[str] = set()
    pending = list(names_in(data))
    while pending:
        name = pending.pop()
        if name in names:
            continue
        names.add(name)
        for binding in flow.table.names.get(name, []):
            if binding.kind == "assign" and not binding.path:
                pending.extend(names_in(binding.value))
    if any("train" in _words(name) for name in names):
        return set()
    return {name for name in names if "test" in _words(name)}


def _in_test_case(ctx: ModuleContext, node: cst.CSTNode) -> bool:
    """In a unit test, "test" names the test case, not the data's role."""
    function = ctx.enclosing_function(node)
    return ctx.module_name.rsplit(".", 1)[-1].startswith("test_") or (
        function is not None and function.name.value.startswith("test")
    )


def _words(name: str) -> set[str]:
    """``X_test_fold`` -> {"x", "test", "fold"}; ``testX`` -> {"test", "x"}."""
    return {word.lower() for word in WORD.findall(name)}


def _reported_as_leakage(ctx: ModuleContext, call: cst.Call, flow: DataFlow) -> bool:
    """ML007's case: a preprocessor fit on the held-out part of a split."""
    return (
        fitted_preprocessor(ctx, call) is not None
        and bool(call.args)
        and bool(flow.roots(call.args[0].value) & flow.test_bindings)
    )
