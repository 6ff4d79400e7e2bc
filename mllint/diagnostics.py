"""The positioned result of a run: what every output format prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mllint.confirm.probe import ModelProbe
from mllint.rule import Severity

#: engine diagnostics for files that could not be checked (not a rule: cannot be selected away)
INVALID_FILE_CODE = "ML000"
INVALID_FILE_NAME = "invalid-file"


@dataclass(frozen=True)
class Position:
    row: int
    #: 1-based, as ruff reports it
    column: int


@dataclass(frozen=True)
class RelatedLocation:
    path: Path
    start: Position
    end: Position
    message: str
    cell: int | None = None


@dataclass(frozen=True)
class TextEdit:
    """Replace the text from ``start`` to ``end`` (exclusive) by ``content``; rows of ``cell`` in notebooks."""

    content: str
    start: Position
    end: Position
    cell: int | None = None


@dataclass(frozen=True)
class SuggestedFix:
    """A rule's fix in text edits, as ruff reports it: ``applicability`` is "safe" or "unsafe"."""

    applicability: str
    message: str
    edits: tuple[TextEdit, ...]


@dataclass(frozen=True)
class Confirmation:
    """What running the code said about a finding (``--confirm``)."""

    status: Literal["confirmed", "refuted", "unconfirmed"]
    #: how it was decided: ``torch.fx``, ``forward hooks``, ``train/eval forward``, ``backward`` ...
    method: str
    #: what was seen, or why nothing could be
    evidence: str


@dataclass
class Diagnostic:
    code: str
    name: str
    message: str
    path: Path
    start: Position
    end: Position
    severity: Severity = "error"
    url: str | None = None
    noqa_row: int | None = None
    related: list[RelatedLocation] = field(default_factory=list)
    fix: SuggestedFix | None = None
    cell: int | None = None
    #: what ``--confirm`` runs to decide the finding, and what it found
    probe: ModelProbe | None = None
    confirmation: Confirmation | None = None

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (str(self.path), self.start.row, self.start.column, self.code)


@dataclass(frozen=True)
class RuleFailure:
    """A rule that raised on one file: reported, and the run marked incomplete."""

    code: str
    path: Path
    message: str
