"""ML007: a preprocessor fit on data that is later split for evaluation, or fit on test data."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Related, Rule
from mllint.semantic import knowledge
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import ScopeTable

#: encoders of the target: fitting them on every label maps class names, it learns no statistic
TARGET_ENCODERS = {"LabelEncoder", "LabelBinarizer", "MultiLabelBinarizer"}
SPLITTER_CLASSES = ("sklearn.model_selection.",)
SEARCH_CV = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")


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
                fitted = _fitted_preprocessor(ctx, call)
                if fitted is None or not call.args:
                    continue
                data = flow.roots(call.args[0].value)
                test = data & flow.test_names
                if test:
                    yield Finding(call, f"preprocessor fit on test data (`{sorted(test)[0]}`): use `transform` only")
                    continue
                produced = data | flow.results_of(fitted, call)
                later = flow.split_after(call, produced)
                if later is not None:
                    yield Finding(
                        call,
                        "preprocessor fit on the full data before it is split / cross-validated: test rows leak "
                        "into the fitted statistics",
                        (Related(later, "the data is split or cross-validated here"),),
                    )


def _fitted_preprocessor(ctx: ModuleContext, call: cst.Call) -> str | None:
    """The fitted object's text for ``scaler.fit(X)`` / ``StandardScaler().fit_transform(X)``."""
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in ("fit", "fit_transform"):
        return None
    receiver = call.func.value
    assert ctx.project is not None
    classes = ctx.project.infer(ctx, receiver)
    if any(q.rsplit(".", 1)[-1] in TARGET_ENCODERS for q in classes):
        return None
    transformer = any(knowledge.is_sklearn_transformer(q) for q in classes)
    pipeline = call.func.attr.value == "fit_transform" and any(q in knowledge.SKLEARN_PIPELINES for q in classes)
    if not (transformer or pipeline):
        return None
    return dotted_name(receiver) or ctx.code(receiver)


class DataFlow:
    """Which names a scope computes from which (flow-insensitive, transitive)."""

    def __init__(self, ctx: ModuleContext, table: ScopeTable) -> None:
        self.ctx = ctx
        self.table = table
        self.sources: dict[str, set[str]] = {}
        self.test_names: set[str] = set()
        for name, bindings in table.names.items():
            for binding in bindings:
                self.sources.setdefault(name, set()).update(_names_in(binding.value))
                if _is_split_call(ctx, binding.value) and binding.path and binding.path[0] % 2 == 1:
                    self.test_names.add(name)

    def roots(self, expr: cst.BaseExpression) -> set[str]:
        found: set[str] = set()
        pending = list(_names_in(expr))
        return self._closure(pending, found)

    def _closure(self, pending: list[str], found: set[str]) -> set[str]:
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending.extend(self.sources.get(name, ()))
        return found

    def derived_from(self, names: set[str]) -> set[str]:
        """Names whose value is computed, directly or not, from any of ``names``."""
        return {name for name in self.sources if self._closure([name], set()) & names} | names

    def results_of(self, fitted: str, fit: cst.Call) -> set[str]:
        """Names assigned from the fitted object's output (``X = scaler.fit_transform(...)``)."""
        results = set()
        for name, bindings in self.table.names.items():
            for binding in bindings:
                call = binding.value
                if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
                    continue
                if call is fit or (dotted_name(call.func.value) or self.ctx.code(call.func.value)) == fitted:
                    results.add(name)
        return results

    def split_after(self, fit: cst.Call, produced: set[str]) -> cst.Call | None:
        tainted = self.derived_from(produced)
        after = self.ctx.order(fit)
        for call in self.table.calls:
            if self.ctx.order(call) <= after or not _is_split_call(self.ctx, call):
                continue
            arguments = [arg.value for arg in call.args]
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("split", "fit"):
                arguments = arguments[:1]
            if any(_names_in(value) & tainted for value in arguments):
                return call
        return None


def _names_in(expr: cst.CSTNode) -> set[str]:
    found = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            found.add(node.value)
        elif isinstance(node, cst.Attribute):
            stack.append(node.value)  # ``df.values``: the data is df; the attribute name is not a variable
            continue
        elif isinstance(node, cst.Call):
            stack.extend(arg.value for arg in node.args)
            stack.append(node.func.value if isinstance(node.func, cst.Attribute) else node.func)
            continue
        elif isinstance(node, (cst.Lambda, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp)):
            continue
        stack.extend(child for child in _children(node))
    return found


def _children(node: cst.CSTNode) -> list[cst.CSTNode]:
    from mllint.semantic.scan import iter_children

    return list(iter_children(node))


def _is_split_call(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    qualname = knowledge.normalize(ctx.qualname(expr.func) or "")
    if qualname in knowledge.SKLEARN_SPLITTERS or qualname in knowledge.SKLEARN_CV:
        return True
    if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("split", "fit"):
        assert ctx.project is not None
        classes = ctx.project.infer(ctx, expr.func.value)
        if expr.func.attr.value == "split":
            return any(q.startswith(SPLITTER_CLASSES) for q in classes)
        return any(q.rsplit(".", 1)[-1] in SEARCH_CV for q in classes)
    return False
