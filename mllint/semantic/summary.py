"""What a module's classes are, read with CPython's parser instead of libcst.

Walking a class hierarchy asks, for each ancestor, only its bases, the names of its methods and
the ``self.<name>`` attributes it assigns (and, for value inference, what an assignment such as
``self.loss = nn.CrossEntropyLoss()`` calls). A model of a large library inherits from mixins spread
over a dozen modules; parsing each of them with libcst to learn their bases costs several times
what CPython's parser does, so the project index answers those questions from these summaries and
parses a module with libcst only when a question needs its code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from mllint.semantic import knowledge
from mllint.semantic.names import NameTable

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
#: nodes that are or hold statements
_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)


@dataclass(frozen=True)
class ClassSummary:
    #: the class's own qualified name (where it is defined, whatever name it was asked by)
    qualname: str
    #: qualified (and normalized) names of the bases that resolve, in order
    bases: tuple[str, ...]
    #: functions defined directly in the class body
    methods: frozenset[str]
    #: names of ``self.<name>`` attributes its methods may assign (a superset)
    attributes: frozenset[str]
    #: the module it is defined in
    module_name: str
    #: per attribute, what its methods' assignments and ``with ... as`` bind to it: the qualified
    #: name a call of a module-level name calls (``nn.CrossEntropyLoss()``), or None for a value
    #: whose kind only its code can tell (a name, an attribute, a call of something else); values
    #: that hold no instance (literals, containers) are left out. Augmented assignments and
    #: ``for`` targets bind nothing value inference follows.
    assigned: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ModuleSummary:
    #: local name -> qualified name, as :class:`mllint.semantic.names.NameTable` builds it
    bindings: dict[str, str]
    #: every class of the module, at any depth, by qualified name
    classes: dict[str, ClassSummary]
    #: names of the classes and functions defined at the top level
    definitions: frozenset[str] = frozenset()
    #: per name, the lines (first, last) of the classes and functions defined directly in the
    #: module body, decorators included, and under :data:`MODULE_CODE` those of its other
    #: statements but imports and docstrings; None when not read (a summary of a parsed module)
    spans: Mapping[str, tuple[tuple[int, int], ...]] | None = None


def summarize(source: str, module_name: str, is_package: bool) -> ModuleSummary | None:
    """The module's name table and classes; None when CPython cannot parse it."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names = NameTable(module_name, is_package)
    found: list[tuple[str, ast.ClassDef]] = []
    for node, owners in _preorder(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.import_module(alias.name, alias.asname)
        elif isinstance(node, ast.ImportFrom) and not any(alias.name == "*" for alias in node.names):
            names.import_from(node.module or "", node.level, [(alias.name, alias.asname) for alias in node.names])
        elif isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            if not owners:
                names.add_definition(node.name)
            if isinstance(node, ast.ClassDef):
                found.append((".".join(part for part in (module_name, *owners, node.name) if part), node))
    classes = {qualname: _summarize_class(qualname, node, names) for qualname, node in found}
    return ModuleSummary(names.bindings, classes, frozenset(names.definitions), definition_spans(tree))


#: the key of :func:`definition_spans` for the statements of the module body that define nothing
MODULE_CODE = ""


def definition_spans(tree: ast.Module) -> dict[str, tuple[tuple[int, int], ...]]:
    """Per name, the lines (first, last) of the classes and functions defined directly in the
    module body, decorators included; under :data:`MODULE_CODE`, those of the module's other
    statements, but for imports and docstrings: what the module computes when it is imported."""
    spans: dict[str, tuple[tuple[int, int], ...]] = {MODULE_CODE: ()}
    for node in tree.body:
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            name = node.name
        elif isinstance(node, (ast.Import, ast.ImportFrom)) or _is_docstring(node):
            continue
        else:
            first, name = node.lineno, MODULE_CODE
        spans[name] = (*spans.get(name, ()), (first, node.end_lineno or node.lineno))
    return spans


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _preorder(tree: ast.Module) -> Iterator[tuple[ast.AST, tuple[str, ...]]]:
    """Every statement in source order (imports and definitions are statements: expressions are
    not entered), with the names of the functions and classes around it."""
    stack: list[tuple[ast.AST, tuple[str, ...]]] = [(tree, ())]
    while stack:
        node, owners = stack.pop()
        yield node, owners
        inner = (*owners, node.name) if isinstance(node, (*_FUNCTIONS, ast.ClassDef)) else owners
        stack.extend((child, inner) for child in reversed(_blocks(node)))


def _blocks(node: ast.AST) -> list[ast.AST]:
    """The statements (and handlers and match cases, which hold statements) directly in ``node``."""
    return [child for child in ast.iter_child_nodes(node) if isinstance(child, _BLOCKS)]


def _summarize_class(own_qualname: str, node: ast.ClassDef, names: NameTable) -> ClassSummary:
    bases = []
    for base in node.bases:
        dotted = _dotted(base.value if isinstance(base, ast.Starred) else base)
        qualname = names.resolve(dotted) if dotted is not None else None
        if qualname is not None:
            bases.append(knowledge.normalize(qualname))
    methods = [statement for statement in node.body if isinstance(statement, _FUNCTIONS)]
    assigned: dict[str, list[str | None]] = {}
    for method in methods:
        for name, value in _self_attributes(method):
            values = assigned.setdefault(name, [])
            if value is None or isinstance(value, _CONTEXTUAL):
                values.append(None)
            elif isinstance(value, ast.Call):
                dotted = _dotted(value.func)
                values.append(names.resolve(dotted) if dotted is not None else None)
    return ClassSummary(
        own_qualname,
        tuple(bases),
        frozenset(method.name for method in methods),
        frozenset(assigned),
        names.module_name,
        {name: tuple(values) for name, values in assigned.items()},
    )


#: the value of a binding value inference does not follow (``+=``, a ``for`` target): like a
#: literal, it names no instance
_NO_INSTANCE = ast.Constant(None)
#: expressions whose value only the code around them tells; any other but a call names no instance
_CONTEXTUAL = (ast.Name, ast.Attribute, ast.IfExp, ast.BoolOp)


def _self_attributes(method: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[str, ast.expr | None]]:
    """``self.<name>`` bound by the method's own statements (not by functions nested in it), where
    the scan binds names: assignments, ``for`` targets and ``with ... as`` targets; with the value
    bound (None when it is an element of an unpacked value)."""
    stack: list[ast.AST] = list(reversed(method.body))
    while stack:
        statement = stack.pop()
        for target, value in _bindings(statement):
            yield from _self_attribute_names(target, value)
        if not isinstance(statement, _FUNCTIONS):
            stack.extend(reversed(_blocks(statement)))


def _bindings(statement: ast.AST) -> list[tuple[ast.expr, ast.expr]]:
    if isinstance(statement, ast.Assign):
        return [(target, statement.value) for target in statement.targets]
    if isinstance(statement, ast.AnnAssign):
        return [(statement.target, statement.value)] if statement.value is not None else []
    if isinstance(statement, (ast.AugAssign, ast.For, ast.AsyncFor)):
        return [(statement.target, _NO_INSTANCE)]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return [(item.optional_vars, item.context_expr) for item in statement.items if item.optional_vars is not None]
    return []


def _self_attribute_names(target: ast.expr, value: ast.expr | None) -> Iterator[tuple[str, ast.expr | None]]:
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _self_attribute_names(element, None)
    elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        yield target.attr, value


def _dotted(expr: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return ".".join(reversed(parts))
