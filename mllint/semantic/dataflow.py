"""Data flow of tabular data within a scope: which values are computed from which, assignment by
assignment, and which values hold the training or the held-out part of a split
(``train_test_split``, ``KFold.split``)."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.scan import Binding, ScopeTable, iter_children

#: encoders of the target: fitting them on every label maps class names, it learns no statistic
TARGET_ENCODERS = {"LabelEncoder", "LabelBinarizer", "MultiLabelBinarizer"}
SPLITTER_CLASSES = ("sklearn.model_selection.",)
ESTIMATOR_LIBRARIES = ("sklearn.", "xgboost.", "lightgbm.", "catboost.", "imblearn.", "keras.")
SEARCH_CV = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")


def estimator_classes(ctx: ModuleContext, receiver: cst.BaseExpression) -> set[str]:
    """The classes (and their ancestors) of a value that is a model or a transformer of a known
    ML library (scikit-learn, XGBoost, LightGBM, CatBoost, Keras ...); empty for anything else."""
    assert ctx.project is not None
    ancestors = {knowledge.normalize(a) for q in ctx.project.infer(ctx, receiver) for a in ctx.project.mro(q)}
    return ancestors if any(a.startswith(ESTIMATOR_LIBRARIES) for a in ancestors) else set()


def fitted_preprocessor(ctx: ModuleContext, call: cst.Call) -> cst.BaseExpression | None:
    """The fitted object (the receiver) of ``scaler.fit(X)`` / ``StandardScaler().fit_transform(X)``."""
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value not in ("fit", "fit_transform"):
        return None
    receiver = call.func.value
    assert ctx.project is not None
    classes = ctx.project.infer(ctx, receiver)
    if any(q.rsplit(".", 1)[-1] in TARGET_ENCODERS for q in classes):
        return None
    transformer = any(knowledge.is_sklearn_transformer(q) for q in classes)
    pipeline = call.func.attr.value == "fit_transform" and any(q in knowledge.SKLEARN_PIPELINES for q in classes)
    return receiver if transformer or pipeline else None


#: a value of one scope: a name and the rank of the assignment that gave it (-1: from outside)
Value = tuple[str, int]


class DataFlow:
    """Which values of a scope are computed from which, assignment by assignment.

    Values are keyed by their assignment, not their name: ``X`` reassigned after a fit and then
    split is another value than the ``X`` the preprocessor saw.
    """

    def __init__(self, ctx: ModuleContext, table: ScopeTable) -> None:
        self.ctx = ctx
        self.table = table
        self._deps: dict[Value, set[Value]] = {}
        #: values bound to the held-out (odd) and the training (even) parts of a split's result
        self.test_bindings: set[Value] = set()
        self.train_bindings: set[Value] = set()
        for name, bindings in table.names.items():
            for binding in bindings:
                value = self._value_of(name, binding)
                self._deps.setdefault(value, set()).update(self.values_in(binding.value))
                if is_split_call(ctx, binding.value) and binding.path:
                    (self.test_bindings if binding.path[0] % 2 == 1 else self.train_bindings).add(value)

    def _value_of(self, name: str, binding: Binding | None) -> Value:
        if binding is None or binding.node is None:
            return (name, -1)
        return (name, self.ctx.order(binding.node))

    def values_in(self, expr: cst.CSTNode) -> set[Value]:
        return {self._value_of(name.value, self.ctx.reaching_binding(name)) for name in data_names(expr)}

    def roots(self, expr: cst.BaseExpression) -> set[Value]:
        """The values ``expr`` is computed from, directly or not."""
        return self._closure(list(self.values_in(expr)))

    def _closure(self, pending: list[Value]) -> set[Value]:
        found: set[Value] = set()
        while pending:
            value = pending.pop()
            if value not in found:
                found.add(value)
                pending.extend(self._deps.get(value, ()))
        return found

    def derived_from(self, values: set[Value]) -> set[Value]:
        """Values computed, directly or not, from any of ``values``."""
        return {value for value in self._deps if self._closure([value]) & values} | values

    def _bindings_of_calls(self) -> Iterator[tuple[Value, cst.Call]]:
        for name, bindings in self.table.names.items():
            for binding in bindings:
                if isinstance(binding.value, cst.Call) and isinstance(binding.value.func, cst.Attribute):
                    yield self._value_of(name, binding), binding.value

    def fitted_object(self, fit: cst.Call, fitted: cst.BaseExpression) -> set[Value]:
        """The fitted preprocessor: its name, or what ``fit`` returned (``scaler = S().fit(X)``)."""
        values = self.values_in(fitted) if isinstance(fitted, cst.Name) else set()
        if isinstance(fit.func, cst.Attribute) and fit.func.attr.value == "fit":
            values |= {value for value, call in self._bindings_of_calls() if call is fit}
        return values

    def results(self, fit: cst.Call, fitted_object: set[Value]) -> set[Value]:
        """What the fit and later calls on the fitted object produce (``X = scaler.fit_transform(...)``)."""
        results = set()
        for value, call in self._bindings_of_calls():
            receiver = call.func.value  # type: ignore[attr-defined]
            later = self.ctx.order(call) > self.ctx.order(fit)
            on_fitted = later and isinstance(receiver, cst.Name) and self.values_in(receiver) & fitted_object
            if (call is fit and value not in fitted_object) or on_fitted:
                results.add(value)
        return results

    def leaking_split(self, fit: cst.Call, fitted: cst.BaseExpression, data: set[Value]) -> cst.Call | None:
        """A later split or cross-validation of the data the preprocessor learned from.

        Leaks when the split features come from the preprocessor's output, or when they are the data
        it saw and the fitted preprocessor is used after the split (``scaler.transform(X_test)``).
        """
        fitted_object = self.fitted_object(fit, fitted)
        results = self.results(fit, fitted_object)
        produced = self.derived_from(results)
        after = self.ctx.order(fit)
        for call in self.table.calls:
            if self.ctx.order(call) <= after or not is_split_call(self.ctx, call):
                continue
            features = set().union(*(self.values_in(arg) for arg in _split_features(self.ctx, call)))
            targets = set().union(*(self.values_in(arg) for arg in _split_targets(self.ctx, call)))
            if data & targets:
                continue  # learned from the target itself: it makes or recodes labels, no test statistic
            if features & produced or (features & data and self._used_after(call, fitted_object | results)):
                return call
        return None

    def _used_after(self, split: cst.Call, values: set[Value]) -> bool:
        """Whether one of ``values`` is read after the statement of ``split``."""
        statement = self.ctx.statement(split)
        scope = self.table.function or self.ctx.tree
        names = [node for node in self.ctx.walk(scope) if isinstance(node, cst.Name)]
        inside = {node for node in self.ctx.walk(statement) if isinstance(node, cst.Name)} if statement else set()
        return any(
            self.ctx.order(name) > self.ctx.order(split) and name not in inside and self.values_in(name) & values
            for name in names
        )


def _split_features(ctx: ModuleContext, call: cst.Call) -> list[cst.BaseExpression]:
    """The feature arguments of a split / cross-validation call (not the estimator, not the target)."""
    positional = [arg.value for arg in call.args if arg.keyword is None and arg.star == ""]
    qualname = knowledge.normalize(ctx.qualname(call.func) or "")
    if qualname in knowledge.SKLEARN_SPLITTERS:
        return positional  # ``train_test_split(X, y)``: every array is split the same way
    if qualname in knowledge.SKLEARN_CV:
        return positional[1:2]  # ``cross_val_score(estimator, X, y)``
    return positional[:1]  # ``KFold.split(X)``, ``GridSearchCV.fit(X, y)``


def _split_targets(ctx: ModuleContext, call: cst.Call) -> list[cst.BaseExpression]:
    """The target arguments of a split / cross-validation call: ``y`` (or ``stratify=y``)."""
    positional = [arg.value for arg in call.args if arg.keyword is None and arg.star == ""]
    named = [arg.value for arg in call.args if arg.keyword is not None and arg.keyword.value in ("y", "stratify")]
    qualname = knowledge.normalize(ctx.qualname(call.func) or "")
    if qualname in knowledge.SKLEARN_SPLITTERS:
        return named + positional[-1:] if len(positional) > 1 else named  # ``train_test_split(X, y)``
    if qualname in knowledge.SKLEARN_CV:
        return named + positional[2:3]  # ``cross_val_score(estimator, X, y)``
    return named + positional[1:2]  # ``KFold.split(X, y)``, ``GridSearchCV.fit(X, y)``


#: attributes that describe an array without carrying its values
METADATA_ATTRIBUTES = {"shape", "dtype", "dtypes", "ndim", "columns"}


def data_names(expr: cst.CSTNode) -> list[cst.Name]:
    """Names whose values flow into ``expr`` (not ``X_test.shape``, not ``len(X_test)``)."""
    found = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            found.append(node)
        elif isinstance(node, cst.Attribute):
            if node.attr.value not in METADATA_ATTRIBUTES:
                stack.append(node.value)  # ``df.values``: the data is df; the attribute name is not a variable
            continue
        elif isinstance(node, cst.Call):
            if isinstance(node.func, cst.Name) and node.func.value == "len":
                continue
            stack.extend(arg.value for arg in node.args)
            stack.append(node.func.value if isinstance(node.func, cst.Attribute) else node.func)
            continue
        elif isinstance(node, (cst.Lambda, cst.ListComp, cst.GeneratorExp, cst.DictComp, cst.SetComp)):
            continue
        stack.extend(iter_children(node))
    return found


def is_split_call(ctx: ModuleContext, expr: cst.BaseExpression) -> bool:
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


def names_in(expr: cst.CSTNode) -> set[str]:
    """The names of the data flowing into ``expr``."""
    return {name.value for name in data_names(expr)}
