"""The language server with one more rule in its catalog, ML099, which raises on every module
that mentions ``explode``. ``tests/test_lsp.py`` starts it to show that a failing rule is logged
while the server and the other rules go on."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import mllint.registry as registry
from mllint.context import ModuleContext
from mllint.rule import Finding, Rule


class Exploding(Rule):
    """## What it does
    Raises, to test the server.
    """

    code = "ML099"
    name = "exploding"
    summary = "A rule that raises"
    triggers = ("explode",)

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        raise RuntimeError("the rule broke")


catalog = registry.all_rules()
registry.all_rules = lambda: (*catalog, Exploding)  # type: ignore[assignment]

from mllint.lsp import serve  # noqa: E402 - the catalog is extended before the server reads it

sys.exit(serve())
