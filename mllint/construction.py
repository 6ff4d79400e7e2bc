"""Building libcst's nodes without their per-node checks while the parser builds them.

libcst builds every node of a parse by calling its class: a frozen dataclass whose ``__init__``
stores each field through ``object.__setattr__`` and then validates the node (the balance of
parentheses, the content of whitespace nodes...). The nodes its own parser builds from source
pass by construction (libcst's source marks the work as redundant there). The checks cost about
a sixth of a parse, the stores another 5-10 %. Each node class gets, once, a constructor that
stores its fields straight through their slots and validates the node as libcst's does, but
within :func:`unchecked_node_construction`. The classes are changed once and never again: recent
Pythons stop caching attribute reads on a class changed about a thousand times (measured on 3.13),
and every read of a node's field would then be slower.

Nodes are hashed by identity, as libcst's own ``__hash__`` does, but by ``object.__hash__`` rather
than a Python function returning ``id(self)``: the semantic layer keys its tables by node (parents,
pre-order ranks, answers), and a Python-level hash made each insertion and lookup 2.5x slower.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from functools import cache

import libcst as cst

Constructor = Callable[..., None]


class _Switch:
    __slots__ = ("checking",)

    def __init__(self) -> None:
        self.checking = True


_NODE_CHECKS = _Switch()


@contextlib.contextmanager
def unchecked_node_construction() -> Iterator[None]:
    """Within: libcst's nodes are built unchecked. Not thread-safe: nodes another thread builds
    meanwhile go unchecked too."""
    _install_constructors()
    checking = _NODE_CHECKS.checking
    _NODE_CHECKS.checking = False
    try:
        yield
    finally:
        _NODE_CHECKS.checking = checking


@cache
def _install_constructors() -> None:
    """A constructor for each node class whose own one dataclasses generated (a class it cannot
    be told for keeps libcst's constructor, and its checks), and identity hashing in C."""
    identity_hash = cst.CSTNode.__dict__["__hash__"]
    for node_class in _node_classes() | {cst.CSTNode}:
        constructor = _unchecked_constructor(node_class)
        if constructor is not None:
            node_class.__init__ = constructor  # type: ignore[misc]
        if node_class.__dict__.get("__hash__") is identity_hash:
            # equality stays identity (libcst's ``__eq__``): a hash by address is consistent with it
            node_class.__hash__ = object.__hash__  # type: ignore[method-assign]


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
    """The same signature as the dataclass's constructor; each field stored by its slot, the
    node validated unless within :func:`unchecked_node_construction`."""
    if "__init__" not in node_class.__dict__ or not dataclasses.is_dataclass(node_class):
        return None
    fields = dataclasses.fields(node_class)
    parameters = dict(list(inspect.signature(node_class.__init__).parameters.items())[1:])
    if list(parameters) != [field.name for field in fields] or not all(field.init for field in fields):
        return None  # not the constructor dataclasses generates for these fields
    namespace: dict[str, object] = {"_checks": _NODE_CHECKS}
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
            # the marker of a default to make, as the dataclass's constructor has it (a caller
            # that reads the signature may pass it)
            namespace[f"_factory_{field.name}"] = field.default_factory
            namespace[f"_make_{field.name}"] = parameters[field.name].default
            signature.append(f"{field.name}=_make_{field.name}")
            value = f"_factory_{field.name}() if {field.name} is _make_{field.name} else {field.name}"
        else:
            signature.append(field.name)
        if field.kw_only and "*" not in signature:
            signature.insert(-1, "*")
        body.append(f"    _store_{field.name}(self, {value})")
    body += ["    if _checks.checking:", "        self.__post_init__()"]
    source = f"def __init__(self, {', '.join(signature)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # the source is built from the class's field names alone
    return namespace["__init__"]  # type: ignore[return-value]


def _slot(node_class: type, name: str) -> object | None:
    """The member descriptor that stores field ``name`` (None for a field kept in a __dict__)."""
    for owner in node_class.__mro__:
        if name in owner.__dict__:
            descriptor = owner.__dict__[name]
            return descriptor if inspect.ismemberdescriptor(descriptor) else None
    return None
