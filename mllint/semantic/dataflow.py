"""Data flow of tabular data within a scope: which names are computed from which, and which
names hold the training or the held-out part of a split (``train_test_split``, ``KFold.split``)."""

from __future__ import annotations

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.names import dotted_name
from mllint.semantic.scan import ScopeTable, iter_children

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


def fitted_preprocessor(ctx: ModuleContext, call: cst.Call) -> str | None:
    """The fitted object's text for ``scaler.fit(X)`` / ``StandardScaler().fit_transform(X)``: a
    scikit-learn transformer (or a pipeline fit and applied at once) learning statistics of ``X``.
    Encoders of the target are left out: fitting them on every label learns no statistic."""
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
        #: names bound to the held-out (odd) and the training (even) parts of a split's result
        self.test_names: set[str] = set()
        self.train_names: set[str] = set()
        for name, bindings in table.names.items():
            for binding in bindings:
                self.sources.setdefault(name, set()).update(names_in(binding.value))
                if is_split_call(ctx, binding.value) and binding.path:
                    (self.test_names if binding.path[0] % 2 == 1 else self.train_names).add(name)

    def roots(self, expr: cst.BaseExpression) -> set[str]:
        found: set[str] = set()
        pending = list(names_in(expr))
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
            if self.ctx.order(call) <= after or not is_split_call(self.ctx, call):
                continue
            arguments = [arg.value for arg in call.args]
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("split", "fit"):
                arguments = arguments[:1]
            if any(names_in(value) & tainted for value in arguments):
                return call
        return None


def names_in(expr: cst.CSTNode) -> set[str]:
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
