"""Building libcst's nodes without their per-node checks while the parser builds them.

libcst builds every node of a parse by calling its class: a frozen dataclass whose ``__init__``
stores each field through ``object.__setattr__`` and then validates the node (the balance of
parentheses, the content of whitespace nodes...). The nodes its own parser builds from source
pass by construction (libcst's source marks the work as redundant there); both costs together are
a fifth of a parse. While parsing, each node class gets a constructor that stores its fields
straight through their slots and checks nothing; nodes built anywhere else, for fixes, are built
and checked by libcst's own constructors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from functools import cache

import libcst as cst

Constructor = Callable[..., None]


@contextlib.contextmanager
def unchecked_node_construction() -> Iterator[None]:
    """Within: libcst's node classes store their fields unchecked. Not thread-safe: nodes another
    thread builds meanwhile go unchecked too."""
    validating = cst.CSTNode.__post_init__
    replaced = _unchecked_constructors()
    stock = {node_class: node_class.__init__ for node_class in replaced}
    cst.CSTNode.__post_init__ = _unchecked  # type: ignore[method-assign]
    for node_class, constructor in replaced.items():
        node_class.__init__ = constructor  # type: ignore[misc]
    try:
        yield
    finally:
        cst.CSTNode.__post_init__ = validating  # type: ignore[method-assign]
        for node_class, constructor in stock.items():
            node_class.__init__ = constructor  # type: ignore[misc]


def _unchecked(_node: cst.CSTNode) -> None:
    pass


@cache
def _unchecked_constructors() -> dict[type[cst.CSTNode], Constructor]:
    """A constructor for each node class whose own one dataclasses generated (a class it cannot
    be told for keeps libcst's constructor, validation off)."""
    constructors = {}
    for node_class in _node_classes():
        constructor = _unchecked_constructor(node_class)
        if constructor is not None:
            constructors[node_class] = constructor
    return constructors


def _node_classes() -> set[type[cst.CSTNode]]:
    found: set[type[cst.CSTNode]] = set()
    pending: list[type[cst.CSTNode]] = [cst.CSTNode]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass not in found:
                found.add(subclass)
                pending.append(subclass)
    return found


def _unchecked_constructor(node_class: type[cst.CSTNode]) -> Constructor | None:
    """The same signature as the dataclass's constructor; each field stored by its slot."""
    if "__init__" not in node_class.__dict__ or not dataclasses.is_dataclass(node_class):
        return None
    fields = dataclasses.fields(node_class)
    parameters = list(inspect.signature(node_class.__init__).parameters)[1:]
    if parameters != [field.name for field in fields] or not all(field.init for field in fields):
        return None  # not the constructor dataclasses generates for these fields
    namespace: dict[str, object] = {"_MISSING": dataclasses.MISSING}
    signature, body = [], []
    for field in fields:
        slot = _slot(node_class, field.name)
        if slot is None:
            return None
        namespace[f"_store_{field.name}"] = slot.__set__
        value = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{field.name}"] = field.default
            signature.append(f"{field.name}=_default_{field.name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{field.name}"] = field.default_factory
            signature.append(f"{field.name}=_MISSING")
            value = f"_factory_{field.name}() if {field.name} is _MISSING else {field.name}"
        else:
            signature.append(field.name)
        if field.kw_only and "*" not in signature:
            signature.insert(-1, "*")
        body.append(f"    _store_{field.name}(self, {value})")
    source = f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)  # the source is built from the class's field names alone
    return namespace["__init__"]  # type: ignore[return-value]


def _slot(node_class: type, name: str) -> object | None:
    """The member descriptor that stores field ``name`` (None for a field kept in a __dict__)."""
    for owner in node_class.__mro__:
        if name in owner.__dict__:
            descriptor = owner.__dict__[name]
            return descriptor if inspect.ismemberdescriptor(descriptor) else None
    return None
