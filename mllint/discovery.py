"""Which files a run lints: Python sources under the given paths, minus excluded and ignored ones."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mllint.config import Settings

DEFAULT_EXCLUDE = (
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".eggs",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "site-packages",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".mllint_cache",
    ".ipynb_checkpoints",
)
SOURCE_SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    negated: bool
    directory_only: bool


def _glob_to_regex(glob: str) -> str:
    """Translate one gitignore glob (already stripped of ``!`` and a trailing slash)."""
    out: list[str] = []
    index = 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if glob.startswith("/**", index) and index + 3 == len(glob):
            out.append("/.*")
            index += 3
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[index + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        elif char == "\\" and index + 1 < len(glob):
            index += 1
            out.append(re.escape(glob[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def parse_gitignore(text: str) -> list[IgnorePattern]:
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        body = _glob_to_regex(line)
        regex = f"^{body}$" if anchored else f"^(?:.*/)?{body}$"
        patterns.append(IgnorePattern(re.compile(regex), negated, directory_only))
    return patterns


class GitIgnore:
    """The .gitignore files met on the way down, each applied below its own folder."""

    def __init__(self) -> None:
        self._by_folder: dict[Path, list[IgnorePattern]] = {}

    def load(self, folder: Path) -> None:
        if folder in self._by_folder:
            return
        try:
            text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        self._by_folder[folder] = parse_gitignore(text)

    def ignored(self, path: Path, is_dir: bool) -> bool:
        verdict = False
        for folder in reversed((path.parent, *path.parent.parents)):
            patterns = self._by_folder.get(folder)
            if not patterns:
                continue
            relative = path.relative_to(folder).as_posix()
            for pattern in patterns:
                if pattern.directory_only and not is_dir:
                    continue
                if pattern.regex.match(relative):
                    verdict = not pattern.negated
        return verdict

    def load_parents(self, folder: Path) -> None:
        """The .gitignore files of the folders above a starting point, up to the repository root."""
        for parent in (folder, *folder.parents):
            self.load(parent)
            if (parent / ".git").exists():
                break


def _matches(path: Path, root: Path, patterns: re.Pattern[str]) -> bool:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = path.as_posix()
    return patterns.match(path.name) is not None or patterns.match(relative) is not None


def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One expression for the file patterns (as :func:`fnmatch.fnmatchcase` reads each)."""
    return re.compile("|".join(fnmatch.translate(pattern) for pattern in patterns) or "(?!)")


def _excluded_with_parents(path: Path, root: Path, patterns: re.Pattern[str]) -> bool:
    """An explicit file is excluded when it, or a folder above it below the root, matches."""
    candidates = [path, *(parent for parent in path.parents if parent.is_relative_to(root) and parent != root)]
    return any(_matches(candidate, root, patterns) for candidate in candidates)


def is_virtualenv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file()


def discover_files(paths: list[Path], settings: Settings) -> Iterator[Path]:
    """Files to lint, in a stable order; explicit file arguments are always included."""
    exclude = _any_of((settings.exclude or DEFAULT_EXCLUDE) + settings.extend_exclude)
    gitignore = GitIgnore()
    seen: set[Path] = set()
    for path in paths:
        if not path.is_dir():
            # a file named explicitly, or one that does not exist: the runner reports the latter
            if settings.force_exclude and _excluded_with_parents(path.resolve(), settings.root, exclude):
                continue
            if path not in seen:
                seen.add(path)
                yield path
            continue
        root = path.resolve()
        if settings.respect_gitignore:
            gitignore.load_parents(root)
        yield from _walk(path, root, settings, exclude, gitignore, seen, set())


def _walk(
    folder: Path,
    real: Path,
    settings: Settings,
    exclude: re.Pattern[str],
    gitignore: GitIgnore,
    seen: set[Path],
    visited: set[Path],
) -> Iterator[Path]:
    if real in visited:  # a symlink loop
        return
    visited.add(real)
    if settings.respect_gitignore:
        gitignore.load(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        real_path = real / entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if _matches(real_path, settings.root, exclude):
            continue
        if settings.respect_gitignore and gitignore.ignored(real_path, is_dir):
            continue
        if is_dir:
            if is_virtualenv(path):
                continue
            yield from _walk(path, Path(os.path.realpath(path)), settings, exclude, gitignore, seen, visited)
        elif entry.name.endswith(SOURCE_SUFFIXES) and path not in seen:
            seen.add(path)
            yield path
