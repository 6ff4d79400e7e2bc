"""ML007: a preprocessor fit on data that is later split for evaluation, or fit on test data."""

from __future__ import annotations

from collections.abc import Iterator

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic.dataflow import DataFlow, fitted_preprocessor


class PreprocessingLeakage(Rule):
    """## What it does
    Finds a scaler, encoder, imputer, feature selector, vectorizer or decomposition fit on the full
    data before that data is split into train and test sets (`train_test_split`, `KFold.split`) or
    evaluated by cross-validation (`cross_val_score`, `GridSearchCV.fit`), and one fit on test data.

    ## Why is this bad?
    The preprocessor learns statistics (means, vocabularies, imputation values, selected features)
    from the rows that later serve as test data: the test score is optimistic and the model looks
    better than it will be on new data. Nothing fails; the leak only shows in production.

    ## Example
    ```python
    X = StandardScaler().fit_transform(X)
    X_train, X_test, y_train, y_test = train_test_split(X, y)
    ```

    ## Use instead
    ```python
    X_train, X_test, y_train, y_test = train_test_split(X, y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    ```
    or put the preprocessor in a `Pipeline` and cross-validate the pipeline.
    """

    code = "ML007"
    name = "preprocessing-leakage"
    summary = "Preprocessor fit on data later split or cross-validated, or fit on test data"
    triggers = ("fit",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        if "fit" not in ctx.source:
            return
        for table in ctx.scopes.values():
            flow = DataFlow(ctx, table)
            for call in table.calls:
                fitted = fitted_preprocessor(ctx, call)
                if fitted is None or not call.args:
                    continue
                data = flow.roots(call.args[0].value)
                test = sorted(key[0] for key in data & flow.test_bindings)
                if test:
                    yield Finding(call, f"preprocessor fit on test data (`{test[0]}`): use `transform` only")
                    continue
                later = flow.leaking_split(call, fitted, data)
                if later is not None:
                    yield Finding(
                        call,
                        "preprocessor fit on the full data before it is split / cross-validated: test rows leak "
                        "into the fitted statistics",
                        (Related(later, "the data is split or cross-validated here"),),
                    )
