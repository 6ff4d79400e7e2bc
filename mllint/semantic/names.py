"""Qualified names from a module's own import table.

libcst's stock QualifiedNameProvider builds full scope metadata, several times the cost of the
parse. Rules only need "what does ``F.softmax`` mean here?", which a table of the module's
imports and top-level definitions answers in one dictionary lookup per name.
"""

from __future__ import annotations

import libcst as cst


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    # by class, not ``isinstance`` (see ``mllint.semantic.scan.is_kind``): rules ask this of nearly
    # every expression they look at
    parts: list[str] = []
    while expr.__class__ is cst.Attribute:
        parts.append(expr.attr.value)  # type: ignore[attr-defined]
        expr = expr.value  # type: ignore[attr-defined]
    if expr.__class__ is not cst.Name:
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def called_name(call: cst.Call) -> str | None:
    """The name a call calls: ``f`` for ``f(...)``, ``step`` for ``opt.step(...)``."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


def _module_path(node: cst.BaseExpression | None) -> str:
    return dotted_name(node) or "" if node is not None else ""


def _alias_name(alias: cst.ImportAlias) -> str | None:
    return alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else None


class NameTable:
    """Local name -> fully qualified name, for imports and top-level definitions."""

    def __init__(self, module_name: str, is_package: bool = False) -> None:
        self.module_name = module_name
        self.is_package = is_package
        self.bindings: dict[str, str] = {}
        #: names of the classes and functions defined at the top level (an import may bind one first)
        self.definitions: set[str] = set()

    def _package(self, level: int) -> str:
        parts = self.module_name.split(".") if self.module_name else []
        if not self.is_package:
            parts = parts[:-1]
        if level > 1:
            parts = parts[: len(parts) - (level - 1)]
        return ".".join(parts)

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            self.import_module(_module_path(alias.name), _alias_name(alias))

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        names = [(_module_path(alias.name), _alias_name(alias)) for alias in node.names]
        self.import_from(_module_path(node.module), len(node.relative), names)

    def import_module(self, full: str, asname: str | None) -> None:
        """``import a.b`` (binds ``a``) or ``import a.b as c``."""
        if asname is not None:
            self.bindings[asname] = full
        else:
            head = full.split(".")[0]
            self.bindings.setdefault(head, head)

    def import_from(self, module: str, level: int, names: list[tuple[str, str | None]]) -> None:
        """``from <level dots><module> import name as asname, ...``."""
        base = module
        if level:
            package = self._package(level)
            base = f"{package}.{base}".strip(".") if base else package
        for name, asname in names:
            self.bindings[asname or name] = f"{base}.{name}" if base else name

    def add_definition(self, name: str) -> None:
        """A class or function defined at the top level of this module."""
        self.definitions.add(name)
        self.bindings.setdefault(name, f"{self.module_name}.{name}" if self.module_name else name)

    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name an expression refers to, when it is an imported or defined name."""
        dotted = dotted_name(expr)
        return self.resolve(dotted) if dotted is not None else None

    def resolve(self, dotted: str) -> str | None:
        """The qualified name of a dotted name written in this module (``nn.Linear``)."""
        head, _, rest = dotted.partition(".")
        target = self.bindings.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target
