"""A persistent cache of findings per file, keyed by everything the findings depend on.

An entry's key hashes mllint's version, the settings, the selected rules, the file's path and
its dependency fingerprint (its text, what it imports transitively, its importers). Entries are
written atomically (temporary file, then rename), so two runs sharing the folder never read a
half-written entry; entries no run has used for a week are pruned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mllint import __version__
from mllint.config import Settings
from mllint.diagnostics import Diagnostic, Position, RelatedLocation, SuggestedFix, TextEdit

CACHE_FOLDER = ".mllint_cache"
STALE_AFTER = 7 * 24 * 3600
#: raised whenever the stored shape of a diagnostic changes: entries of another shape are never read
CACHE_FORMAT = 2


def settings_salt(settings: Settings, codes: list[str]) -> str:
    described = {
        "version": __version__,
        "format": CACHE_FORMAT,
        "codes": sorted(codes),
        "per_file_ignores": {key: list(value) for key, value in sorted(settings.per_file_ignores.items())},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _encode(diagnostic: Diagnostic) -> dict[str, Any]:
    data = asdict(diagnostic)
    data["path"] = str(diagnostic.path)
    data["related"] = [{**asdict(note), "path": str(note.path)} for note in diagnostic.related]
    return data


def _decode(data: dict[str, Any]) -> Diagnostic:
    related = [
        RelatedLocation(
            Path(note["path"]), Position(**note["start"]), Position(**note["end"]), note["message"], note["cell"]
        )
        for note in data.pop("related")
    ]
    fix = data.pop("fix")
    if fix is not None:
        edits = tuple(
            TextEdit(edit["content"], Position(**edit["start"]), Position(**edit["end"]), edit["cell"])
            for edit in fix["edits"]
        )
        fix = SuggestedFix(fix["applicability"], fix["message"], edits)
    return Diagnostic(
        **{
            **data,
            "path": Path(data["path"]),
            "start": Position(**data["start"]),
            "end": Position(**data["end"]),
            "related": related,
            "fix": fix,
        }
    )


class Cache:
    def __init__(self, folder: Path, salt: str) -> None:
        self.folder = folder
        self.salt = salt
        self.used: set[str] = set()

    def key(self, path: Path, fingerprint: str) -> str:
        return hashlib.sha256(f"{self.salt}\0{path.resolve()}\0{fingerprint}".encode()).hexdigest()[:40]

    def get(self, key: str, path: Path) -> list[Diagnostic] | None:
        """The cached findings of ``path`` (reported under the path as this run names it)."""
        entry = self.folder / f"{key}.json"
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            diagnostics = [_decode(item) for item in data]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        for diagnostic in diagnostics:
            diagnostic.path = path
        self.used.add(key)
        with contextlib.suppress(OSError):
            os.utime(entry)
        return diagnostics

    def put(self, key: str, diagnostics: list[Diagnostic]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            gitignore = self.folder / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n")
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump([_encode(d) for d in diagnostics], stream)
            os.replace(temporary, self.folder / f"{key}.json")
            self.used.add(key)
        except OSError:
            # a read-only checkout or a full disk: lint without caching rather than fail
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temporary)

    def prune(self) -> None:
        """Delete entries unused by this run and untouched for a week (other runs may use them)."""
        cutoff = time.time() - STALE_AFTER
        try:
            entries = list(self.folder.glob("*.json")) + list(self.folder.glob("*.tmp"))
        except OSError:
            return
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.stem not in self.used and entry.stat().st_mtime < cutoff:
                    entry.unlink()
