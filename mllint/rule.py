"""The contract between the engine and the rule catalog.

A rule is a subclass of :class:`Rule` living in its own module of ``mllint.rules``.
Its class docstring is its user documentation, written in ruff's shape
(``## What it does`` / ``## Why is this bad?`` / ``## Example`` / ``## Use instead``).
The engine calls :meth:`Rule.check` once per module and turns the returned
:class:`Finding` objects into positioned diagnostics; a rule never formats output.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

import libcst as cst

if TYPE_CHECKING:
    from mllint.context import ModuleContext

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Related:
    """A secondary location that explains a finding (where the softmax is, where the loss is)."""

    node: cst.CSTNode
    message: str
    #: the module the node belongs to, when it is not the module being checked
    context: ModuleContext | None = None


@dataclass(frozen=True)
class Edit:
    """One change of a fix, anchored to nodes; the engine turns it into text edits.

    ``replace`` swaps the node's source for ``content`` (a node is written as it would appear in
    place: its continuation lines get the indentation of the blocks around); ``before`` / ``after`` insert ``content``
    as new lines at the statement's indentation; ``remove`` deletes the statement's lines;
    ``move_before`` / ``move_after`` move the statement's lines next to ``anchor`` (a statement).
    Statement edits accept any node inside the statement; the statement must have its lines to itself.
    """

    kind: Literal["replace", "before", "after", "remove", "move_before", "move_after"]
    node: cst.CSTNode
    content: str | cst.CSTNode = ""
    anchor: cst.CSTNode | None = None


def replace(node: cst.CSTNode, content: str | cst.CSTNode) -> Edit:
    return Edit("replace", node, content)


def insert_before(statement: cst.CSTNode, content: str) -> Edit:
    return Edit("before", statement, content)


def insert_after(statement: cst.CSTNode, content: str) -> Edit:
    return Edit("after", statement, content)


def move_before(statement: cst.CSTNode, anchor: cst.CSTNode) -> Edit:
    return Edit("move_before", statement, anchor=anchor)


def move_after(statement: cst.CSTNode, anchor: cst.CSTNode) -> Edit:
    return Edit("move_after", statement, anchor=anchor)


def with_keyword(call: cst.Call, keyword: str, value: str) -> cst.Call:
    """``call`` with ``keyword=value`` appended to its arguments, in the call's own layout: the new
    argument takes over a trailing comma (and the line break before the parenthesis)."""
    args = list(call.args)
    new = cst.Arg(
        cst.parse_expression(value),
        keyword=cst.Name(keyword),
        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
    )
    if args:
        last = args[-1]
        if isinstance(last.comma, cst.Comma):
            new = new.with_changes(comma=last.comma)
        between = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else None
        args[-1] = last.with_changes(comma=between or cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return call.with_changes(args=[*args, new])


@dataclass(frozen=True)
class Fix:
    """A rewrite that removes the finding. ``safe``: it cannot change what correct code does;
    unsafe fixes are applied only with ``--unsafe-fixes`` (their message says what to review)."""

    message: str
    edits: tuple[Edit, ...]
    safe: bool = True


@dataclass(frozen=True)
class ModelSubject:
    """The project model class a finding concerns: what a dynamic check builds and runs."""

    #: qualified name in the project index (``pkg.models.Net``)
    qualname: str
    #: the code under suspicion runs the model (and computes its loss) with gradients off
    without_grad: bool = False


@dataclass(frozen=True)
class Finding:
    """What a rule reports: the node to underline and why (and how to fix it, when it can be told)."""

    node: cst.CSTNode
    message: str
    related: tuple[Related, ...] = field(default=())
    fix: Fix | None = None
    #: for rules with a ``dynamic_check``: the model a run can check (None: none it can build)
    subject: ModelSubject | None = None


class Rule:
    """Base class of every rule; subclasses set the class attributes below."""

    code: ClassVar[str]
    name: ClassVar[str]
    #: one line, shown by ``mllint rules``
    summary: ClassVar[str]
    severity: ClassVar[Severity] = "error"
    default_enabled: ClassVar[bool] = True
    #: text one of which a module must contain for the rule to possibly report on it (a cheap
    #: relevance pass: modules that can matter to no selected rule are not analyzed): strings, or
    #: patterns (one search for many alternatives with a common prefix); empty: any module
    triggers: ClassVar[tuple[str | re.Pattern[str], ...]] = ()
    #: the dynamic check that can confirm or refute this rule's findings by running the model
    #: their ``subject`` names (``output-normalization``, ``mode-dependence``, ``gradient-reach``)
    dynamic_check: ClassVar[str | None] = None

    @classmethod
    def relevant(cls, source: str) -> bool:
        return not cls.triggers or any(
            trigger in source if isinstance(trigger, str) else trigger.search(source) for trigger in cls.triggers
        )

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def url(cls) -> str:
        return f"https://github.com/mllint-dev/mllint/blob/main/docs/rules.md#{cls.code.lower()}"
