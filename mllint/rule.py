"""The contract between the engine and the rule catalog.

A rule is a subclass of :class:`Rule` living in its own module of ``mllint.rules``.
Its class docstring is its user documentation, written in ruff's shape
(``## What it does`` / ``## Why is this bad?`` / ``## Example`` / ``## Use instead``).
The engine calls :meth:`Rule.check` once per module and turns the returned
:class:`Finding` objects into positioned diagnostics; a rule never formats output.
"""

from __future__ import annotations

import inspect
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
class ModelSubject:
    """The project model class a finding concerns: what a dynamic check builds and runs."""

    #: qualified name in the project index (``pkg.models.Net``)
    qualname: str
    #: the code under suspicion runs the model (and computes its loss) with gradients off
    without_grad: bool = False


@dataclass(frozen=True)
class Finding:
    """What a rule reports: the node to underline and why."""

    node: cst.CSTNode
    message: str
    related: tuple[Related, ...] = field(default=())
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
    #: relevance pass: modules that can matter to no selected rule are not analyzed); empty: any
    triggers: ClassVar[tuple[str, ...]] = ()
    #: the dynamic check that can confirm or refute this rule's findings by running the model
    #: their ``subject`` names (``output-normalization``, ``mode-dependence``, ``gradient-reach``)
    dynamic_check: ClassVar[str | None] = None

    @classmethod
    def relevant(cls, source: str) -> bool:
        return not cls.triggers or any(trigger in source for trigger in cls.triggers)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        raise NotImplementedError

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def url(cls) -> str:
        return f"https://github.com/mllint-dev/mllint/blob/main/docs/rules.md#{cls.code.lower()}"
