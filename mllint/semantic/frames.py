"""Which columns a pandas expression holds, followed through straight-line assignments.

``df.drop(columns=["y"])`` holds every column of ``df`` but ``y``; ``df[cols]`` with
``cols = [c for c in df.columns if c not in ["id"]]`` every column but ``id``; ``df["y"]`` the
column ``y``. Row selections (``df.sample()``, ``df.loc[mask]``, ``df.dropna()``) keep the columns
and the frame they come from. What cannot be read (a computed list, a positional slice) is None.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from mllint.context import ModuleContext
from mllint.semantic.scan import Binding

MAX_DEPTH = 12
#: methods that select or reshape rows (or convert) and keep the columns of their frame
ROW_METHODS = {
    "sample", "dropna", "fillna", "copy", "reset_index", "astype", "to_numpy", "head", "tail", "sort_values",
    "query", "drop_duplicates", "infer_objects", "convert_dtypes",
}  # fmt: skip
ROW_INDEXERS = {"loc", "iloc"}


@dataclass(frozen=True)
class Columns:
    """The columns of a frame ``root`` an expression holds: all of them but ``excluded``, or
    exactly ``included`` when that is not None."""

    root: str
    excluded: frozenset[str] = frozenset()
    included: frozenset[str] | None = None

    def holds(self, column: str) -> bool:
        if self.included is not None:
            return column in self.included
        return column not in self.excluded

    def select(self, key: Selection) -> Columns:
        if key.included is not None:
            return Columns(self.root, included=key.included - key.excluded)
        if self.included is not None:
            return Columns(self.root, included=self.included - key.excluded)
        return Columns(self.root, excluded=self.excluded | key.excluded)


@dataclass(frozen=True)
class Selection:
    """A column key: every column but ``excluded``, or exactly ``included``."""

    excluded: frozenset[str] = frozenset()
    included: frozenset[str] | None = None


def columns_of(ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> Columns | None:
    """The columns ``expr`` holds, and the frame they are taken from."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(expr, cst.Name):
        value = _reaching_value(ctx, expr)
        return Columns(expr.value) if value is None or not _is_frame_step(value) else columns_of(ctx, value, depth + 1)
    if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
        return columns_of(ctx, expr.value, depth + 1)
    if isinstance(expr, cst.Subscript):
        return _subscript(ctx, expr, depth)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        method = expr.func.attr.value
        frame = columns_of(ctx, expr.func.value, depth + 1)
        if frame is None or method in ROW_METHODS:
            return frame
        if method == "drop":
            dropped = _dropped_columns(ctx, expr)
            return None if dropped is None else frame.select(Selection(excluded=dropped))
    return None


def column_of(ctx: ModuleContext, expr: cst.BaseExpression, depth: int = 0) -> tuple[str, str] | None:
    """(frame, column) for a single column: ``df["y"]``, ``df[["y"]]``, ``df.y.values``."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(expr, cst.Name):
        value = _reaching_value(ctx, expr)
        return column_of(ctx, value, depth + 1) if value is not None else None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
        return column_of(ctx, expr.value, depth + 1)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ROW_METHODS:
        return column_of(ctx, expr.func.value, depth + 1)
    if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
        frame = columns_of(ctx, expr.value, depth + 1)
        key = _selection(ctx, _index(expr), depth + 1)
        if frame is not None and key is not None and key.included is not None and len(key.included) == 1:
            return frame.root, next(iter(key.included))
    return None


def constant_string(ctx: ModuleContext, expr: cst.BaseExpression) -> str | None:
    """A string literal, or a name bound (in its scope or the module's) only to one."""
    if isinstance(expr, cst.SimpleString):
        return str(expr.evaluated_value)
    if not isinstance(expr, cst.Name):
        return None
    for scope in (ctx.enclosing_function(expr), None):
        bindings = ctx.scopes[scope].names.get(expr.value) if scope in ctx.scopes else None
        if bindings:
            values = {str(b.value.evaluated_value) for b in bindings if isinstance(b.value, cst.SimpleString)}
            return values.pop() if len(values) == 1 and len(bindings) == 1 else None
    return None


def _is_frame_step(value: cst.BaseExpression) -> bool:
    """A value that derives a frame from another variable's frame, not one that loads or builds
    a frame (``pd.read_csv(path).dropna()``: the variable it is assigned to is the frame)."""
    while True:
        if isinstance(value, (cst.Subscript, cst.Name)):
            return True
        if isinstance(value, cst.Attribute) and value.attr.value == "values":
            value = value.value
        elif (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and (value.func.attr.value in ROW_METHODS or value.func.attr.value == "drop")
        ):
            value = value.func.value
        else:
            return False


def _reaching_value(ctx: ModuleContext, name: cst.Name) -> cst.BaseExpression | None:
    """The value of the last plain assignment to ``name`` before the statement that uses it."""
    statement = ctx.statement(name)
    before = ctx.order(statement) if statement is not None else ctx.order(name)
    bindings: list[Binding] = ctx.scope_of(name).names.get(name.value, [])
    earlier = [b for b in bindings if b.node is not None and ctx.order(b.node) < before]
    if not earlier:
        return None
    last = max(earlier, key=lambda b: ctx.order(b.node))  # type: ignore[arg-type]
    return last.value if last.kind == "assign" and not last.path else None


def _index(subscript: cst.Subscript) -> cst.BaseExpression | None:
    element = subscript.slice[0].slice
    return element.value if isinstance(element, cst.Index) else None


def _subscript(ctx: ModuleContext, expr: cst.Subscript, depth: int) -> Columns | None:
    if isinstance(expr.value, cst.Attribute) and expr.value.attr.value in ROW_INDEXERS:
        # ``df.loc[mask]`` keeps the columns; ``df.loc[:, cols]`` / ``df.iloc[:, :-1]`` is not read
        return columns_of(ctx, expr.value.value, depth + 1) if len(expr.slice) == 1 else None
    frame = columns_of(ctx, expr.value, depth + 1)
    key = _index(expr) if len(expr.slice) == 1 else None
    if frame is None or key is None:
        return None
    if isinstance(key, (cst.Comparison, cst.BooleanOperation, cst.UnaryOperation)):
        return frame  # a boolean mask selects rows
    selection = _selection(ctx, key, depth + 1)
    return frame.select(selection) if selection is not None else None


def _selection(ctx: ModuleContext, key: cst.BaseExpression | None, depth: int) -> Selection | None:
    """The columns a key selects: a name, a list of names, every column, a filtered list of them."""
    if key is None or depth > MAX_DEPTH:
        return None
    name = constant_string(ctx, key)
    if name is not None:
        return Selection(included=frozenset({name}))
    if isinstance(key, (cst.List, cst.Tuple)):
        names = [constant_string(ctx, element.value) for element in key.elements]
        return Selection(included=frozenset(names)) if None not in names else None  # type: ignore[arg-type]
    if isinstance(key, cst.Name):
        value = _reaching_value(ctx, key)
        return _selection(ctx, value, depth + 1) if value is not None else None
    if _is_all_columns(key):
        return Selection()
    if isinstance(key, cst.Call) and isinstance(key.func, cst.Attribute):
        if key.func.attr.value in ("drop", "difference") and _is_all_columns(key.func.value) and key.args:
            removed = _strings(ctx, key.args[0].value)
            return Selection(excluded=removed) if removed is not None else None
        if key.func.attr.value == "tolist":
            return _selection(ctx, key.func.value, depth + 1)
    if isinstance(key, cst.Call) and isinstance(key.func, cst.Name) and key.func.value == "list" and key.args:
        return _selection(ctx, key.args[0].value, depth + 1)
    if isinstance(key, cst.ListComp):
        return _filtered(ctx, key, depth)
    return None


def _is_all_columns(expr: cst.BaseExpression) -> bool:
    """``df.columns`` (``.tolist()`` / ``.values`` / ``list(...)`` of it)."""
    while isinstance(expr, cst.Call) and expr.args and isinstance(expr.func, cst.Name) and expr.func.value == "list":
        expr = expr.args[0].value
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "tolist":
        expr = expr.func.value
    if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
        expr = expr.value
    return isinstance(expr, cst.Attribute) and expr.attr.value == "columns"


def _filtered(ctx: ModuleContext, comp: cst.ListComp, depth: int) -> Selection | None:
    """``[c for c in columns if c not in ["a", "b"]]`` / ``if c != "a"``."""
    loop = comp.for_in
    if loop.inner_for_in is not None or not isinstance(loop.target, cst.Name):
        return None
    if not (isinstance(comp.elt, cst.Name) and comp.elt.value == loop.target.value):
        return None
    source = _selection(ctx, loop.iter, depth + 1)
    if source is None:
        return None
    removed: set[str] = set()
    for condition in loop.ifs:
        excluded = _excluded_by(ctx, condition.test, loop.target.value)
        if excluded is None:
            return None
        removed |= excluded
    if source.included is not None:
        return Selection(included=source.included - removed)
    return Selection(excluded=source.excluded | removed)


def _excluded_by(ctx: ModuleContext, test: cst.BaseExpression, variable: str) -> set[str] | None:
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    if not (isinstance(test.left, cst.Name) and test.left.value == variable):
        return None
    comparison = test.comparisons[0]
    if isinstance(comparison.operator, cst.NotIn):
        found = _strings(ctx, comparison.comparator)
        return set(found) if found is not None else None
    if isinstance(comparison.operator, cst.NotEqual):
        name = constant_string(ctx, comparison.comparator)
        return {name} if name is not None else None
    return None


def _strings(ctx: ModuleContext, expr: cst.BaseExpression) -> frozenset[str] | None:
    """A string or a literal list / tuple / set of strings."""
    single = constant_string(ctx, expr)
    if single is not None:
        return frozenset({single})
    if isinstance(expr, cst.Name):
        value = _reaching_value(ctx, expr)
        return _strings(ctx, value) if value is not None and not isinstance(value, cst.Name) else None
    if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
        names = [constant_string(ctx, element.value) for element in expr.elements]
        return frozenset(names) if None not in names else None  # type: ignore[arg-type]
    return None


def _dropped_columns(ctx: ModuleContext, call: cst.Call) -> frozenset[str] | None:
    """The columns ``frame.drop(...)`` removes; empty for a drop of rows; None when unknown."""
    from mllint.semantic.values import argument

    columns = argument(call, "columns")
    if columns is not None:
        return _strings(ctx, columns)
    axis = argument(call, "axis", 1)
    labels = argument(call, "labels", 0)
    by_column = (isinstance(axis, cst.Integer) and axis.value == "1") or (
        isinstance(axis, cst.SimpleString) and axis.evaluated_value == "columns"
    )
    if not by_column:
        # ``axis=0`` drops rows; without an axis, pandas drops rows and polars columns: unknown
        return frozenset() if isinstance(axis, cst.Integer) else None
    return _strings(ctx, labels) if labels is not None else None
