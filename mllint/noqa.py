"""``# noqa`` and ``# noqa: ML001, ML002`` suppression comments."""

from __future__ import annotations

import io
import re
import tokenize

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
#: a bare noqa comment: every code on the line is suppressed
ALL = frozenset({"*"})


def noqa_lines(source: str) -> dict[int, frozenset[str]]:
    """Row -> suppressed codes, read from real comments only (not from strings)."""
    if "noqa" not in source.lower():
        return {}
    found: dict[int, frozenset[str]] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = NOQA.search(token.string)
        if match is None:
            continue
        codes = match.group("codes")
        found[token.start[0]] = frozenset(re.split(r"[\s,]+", codes.upper().strip())) if codes else ALL
    return found


def is_suppressed(code: str, row: int, noqa: dict[int, frozenset[str]]) -> bool:
    codes = noqa.get(row)
    return codes is not None and (codes is ALL or code in codes)


def noqa_edit(source: str, row: int, code: str) -> tuple[int, int, str] | None:
    """The edit that suppresses ``code`` on ``row`` (1-based): ``(start, end, text)`` replacing the
    columns ``start:end`` (0-based) of that row. An existing ``# noqa: ...`` is extended, otherwise a
    comment is appended. None when the row already suppresses the code or cannot end in a comment
    (it ends inside a string or with a backslash continuation) or the source does not tokenize."""
    lines = io.StringIO(source).readlines()  # the rows tokenize counts
    if not 1 <= row <= len(lines):
        return None
    line = lines[row - 1].rstrip("\r\n")
    if line.rstrip().endswith("\\"):
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    for token in tokens:
        if token.start[0] <= row < token.end[0] and token.type != tokenize.NL:
            return None  # a string (or other token) runs on past the end of the row
        if token.type != tokenize.COMMENT or token.start[0] != row:
            continue
        match = NOQA.search(token.string)
        if match is None:
            break
        codes = match.group("codes")
        if codes is None or code in re.split(r"[\s,]+", codes.upper()):
            return None
        end = token.start[1] + match.end("codes")
        return end, end, f", {code}"
    end = len(line.rstrip())
    return end, len(line), f"  # noqa: {code}"
