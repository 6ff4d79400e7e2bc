"""Import a project's modules without running their top level.

A training script usually defines its model and then trains at module level, with no
``if __name__ == "__main__":`` guard. Importing it would start the run. Here a project module is
executed statement by statement, and only its definitions run: imports, ``def`` and ``class``
statements, and assignments whose value cannot act on the world (literals, arithmetic, calls into
imported libraries that do not read, write or fetch anything). Of the module that defines the
model, only the definitions the model's class needs (transitively) run; other project modules it
imports get the same treatment, each definition kept. Everything else is skipped: expression
statements, loops, ``with`` and ``if`` blocks, assignments that call project functions.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import re
import symtable
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

#: builtins that compute and touch nothing
PURE_BUILTINS = {
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "float", "frozenset", "int", "isinstance",
    "len", "list", "max", "min", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted",
    "str", "sum", "tuple", "type", "zip", "getattr", "hasattr", "issubclass",
}  # fmt: skip
#: imported callables a kept assignment must not call: they reach files, processes or the network
ACTING_NAME = re.compile(
    r"load|save|read|write|open|download|fetch|mkdir|makedirs|remove|unlink|rmtree|system|popen|"
    r"spawn|run|call|connect|request|get|post|login|init|seed|parse|exit|input|print|sleep|listdir|glob|walk",
    re.IGNORECASE,
)
ACTING_MODULES = {"os", "sys", "shutil", "subprocess", "socket", "pathlib", "requests", "urllib", "wandb", "io"}


def bound_names(statement: ast.stmt) -> set[str]:
    """Module-level names a kept-able statement binds (empty for statements never kept)."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, ast.Import):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    if isinstance(statement, ast.ImportFrom):
        return {alias.asname or alias.name for alias in statement.names if alias.name != "*"}
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        names = {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
        simple = all(isinstance(n, (ast.Name, ast.Tuple, ast.List, ast.Store)) for t in targets for n in ast.walk(t))
        return names if simple and statement.value is not None else set()
    if isinstance(statement, ast.Try) and _only_imports(statement):
        return {name for part in _try_parts(statement) for name in bound_names(part)}
    return set()


def _try_parts(statement: ast.Try) -> list[ast.stmt]:
    return [*statement.body, *(s for handler in statement.handlers for s in handler.body), *statement.orelse]


def _only_imports(statement: ast.Try) -> bool:
    """``try: import x`` / ``except ImportError: x = None``: an optional dependency."""
    return all(
        isinstance(part, (ast.Import, ast.ImportFrom, ast.Pass))
        or (isinstance(part, ast.Assign) and isinstance(part.value, ast.Constant))
        for part in _try_parts(statement)
    )


def _references(statement: ast.stmt, scopes: dict[tuple[str, int], symtable.SymbolTable]) -> set[str]:
    """Module-level names a statement uses: for a ``def`` or ``class``, what its decorators, bases
    and defaults use and the globals of its body (a method's own ``tokens`` parameter is not the
    module's ``tokens``)."""
    if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
    if isinstance(statement, ast.ClassDef):
        outside: list[ast.AST] = [*statement.decorator_list, *statement.bases, *statement.keywords]
    else:
        outside = [*statement.decorator_list, *statement.args.defaults, *statement.args.kw_defaults]
        outside += [a.annotation for a in ast.walk(statement.args) if isinstance(a, ast.arg) and a.annotation]
        outside += [statement.returns] if statement.returns else []
    names = {n.id for part in outside if part is not None for n in ast.walk(part) if isinstance(n, ast.Name)}
    table = scopes.get((statement.name, statement.lineno))
    return names | (
        _globals(table) if table is not None else {n.id for n in ast.walk(statement) if isinstance(n, ast.Name)}
    )


def _globals(table: symtable.SymbolTable) -> set[str]:
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_global() and symbol.is_referenced()}
    if table.get_type() == "class":
        # a class body reads the module's names it does not assign itself
        names |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and not s.is_assigned()}
    for child in table.get_children():
        names |= _globals(child)
    return names


def _imported_names(statements: Sequence[ast.stmt]) -> dict[str, str]:
    """Name -> the module (or module.name) it is imported from."""
    imported: dict[str, str] = {}
    for statement in statements:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                imported[(alias.asname or alias.name).split(".")[0]] = alias.name
        elif isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                imported[alias.asname or alias.name] = f"{statement.module or ''}.{alias.name}"
    return imported


def _is_inert(value: ast.expr, imported: dict[str, str]) -> bool:
    """Evaluating the value cannot act on the world: every call is to a pure builtin or to an
    imported library callable whose name does not say it reads, writes or fetches."""
    for node in ast.walk(value):
        if isinstance(node, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
            return False
        if not isinstance(node, ast.Call):
            continue
        chain = _dotted(node.func)
        if chain is None:
            return False
        root = chain.split(".")[0]
        if root in PURE_BUILTINS and root == chain and root not in imported:
            continue
        origin = imported.get(root)
        if origin is None or origin.lstrip(".").split(".")[0] in ACTING_MODULES:
            return False
        if ACTING_NAME.search(f"{origin}.{chain}"):
            return False
    return True


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def definitions(tree: ast.Module, wanted: Iterable[str] | None, scopes: symtable.SymbolTable) -> list[ast.stmt]:
    """The module-level statements to run, in their order: ``__future__`` and star imports, and
    the statements binding the ``wanted`` names (None: every function and class) and, transitively,
    the names those statements use. Assignments are kept only when inert."""
    statements = tree.body
    tables = {(table.get_name(), table.get_lineno()): table for table in scopes.get_children()}
    imported = _imported_names(statements)
    binders: dict[str, list[int]] = {}
    for position, statement in enumerate(statements):
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and not _is_inert(statement.value, imported):
            continue  # its name stays unbound: using it fails, and says why
        for name in bound_names(statement):
            binders.setdefault(name, []).append(position)
    if wanted is None:
        wanted = [s.name for s in statements if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    pending = list(wanted)
    kept: set[int] = set()
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for position in binders.get(name, ()):
            if position not in kept:
                kept.add(position)
                pending.extend(_references(statements[position], tables))
    for position, statement in enumerate(statements):
        if isinstance(statement, ast.ImportFrom) and (
            statement.module == "__future__" or any(alias.name == "*" for alias in statement.names)
        ):
            kept.add(position)
    return [statements[position] for position in sorted(kept)]


def _future_flags(statements: Sequence[ast.stmt]) -> int:
    flags = 0
    for statement in statements:
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            for alias in statement.names:
                flags |= getattr(__future__, alias.name).compiler_flag
    return flags


class DefinitionsLoader(importlib.abc.Loader):
    """Executes a project module's definitions only (see the module docstring)."""

    def __init__(self, path: str, wanted: set[str] | None, skipped_imports: list[str]) -> None:
        self.path = path
        self.wanted = wanted
        self.skipped_imports = skipped_imports

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        source = Path(self.path).read_text(encoding="utf-8")
        tree = ast.parse(source, self.path)
        kept = definitions(tree, self.wanted, symtable.symtable(source, self.path, "exec"))
        flags = _future_flags(kept)
        namespace = module.__dict__
        namespace.setdefault("__builtins__", builtins)
        for statement in kept:
            code = compile(ast.Module([statement], []), self.path, "exec", flags=flags, dont_inherit=True)
            if isinstance(statement, ast.Import) or (
                isinstance(statement, ast.ImportFrom) and statement.module != "__future__"
            ):
                try:
                    exec(code, namespace)
                except ImportError as error:
                    # a dependency the model may not need (a logger, a dataset library): a name
                    # the model does use fails later, with this reason
                    self.skipped_imports.append(f"{error.name or error}")
                continue
            exec(code, namespace)


class ProjectFinder(importlib.abc.MetaPathFinder):
    """Finds the project's modules (files under its roots, outside installed packages) and loads
    them with :class:`DefinitionsLoader`; everything else is imported as usual."""

    def __init__(self, roots: Sequence[Path], wanted: dict[str, set[str]]) -> None:
        self.roots = [root.resolve() for root in roots]
        self.wanted = wanted
        self.skipped_imports: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = Path(spec.origin).resolve()
        if not self._in_project(origin):
            return None
        loader = DefinitionsLoader(str(origin), self.wanted.get(fullname), self.skipped_imports)
        return importlib.util.spec_from_file_location(
            fullname, origin, loader=loader, submodule_search_locations=spec.submodule_search_locations
        )

    def _in_project(self, path: Path) -> bool:
        if {"site-packages", "dist-packages"} & set(path.parts):
            return False
        return any(path.is_relative_to(root) for root in self.roots)


def install(roots: Sequence[Path], wanted: dict[str, set[str]]) -> ProjectFinder:
    """Project modules imported from now on run their definitions only."""
    finder = ProjectFinder(roots, wanted)
    for root in reversed(finder.roots):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    sys.meta_path.insert(0, finder)
    return finder
