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
