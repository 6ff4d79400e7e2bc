"""ML119: a misspelled ``requires_grad`` assignment that freezes (or unfreezes) nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Rule, replace

REAL = "requires_grad"
#: how far (in edits of the lower-cased name without underscores) a spelling may stray
MAX_EDITS = 2
#: ``.name`` in the text, for names that mention gradients
ATTRIBUTE_NAME = re.compile(r"\.\s*(\w*grad\w*)", re.IGNORECASE)


class RequiresGradTypo(Rule):
    """## What it does
    Finds assignments to a misspelling of `requires_grad` (`param.require_grad = False`,
    `requires_grads`, `requiresGrad`, or the method name `requires_grad_`) that nothing in the
    module ever reads back. Private names (`self._requires_grad`) are the program's own flags.

    ## Why is this bad?
    Python lets any attribute be set on a tensor or a module: the misspelled assignment creates a
    new, unused attribute and the real flag keeps its value. The layers meant to be frozen are
    still trained (and the ones meant to be unfrozen are not), with no error and no warning.

    ## Example
    ```python
    for param in backbone.parameters():
        param.require_grad = False
    ```

    ## Use instead
    ```python
    for param in backbone.parameters():
        param.requires_grad = False
    ```
    or `backbone.requires_grad_(False)`.
    """

    code = "ML119"
    name = "requires-grad-typo"
    summary = "Assignment to a misspelled `requires_grad` attribute: nothing is frozen or unfrozen"
    severity = "error"
    triggers = ("grad", "Grad")

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        # the text names every attribute the module assigns: without a near miss, no walk of the tree
        if not any(is_requires_grad_misspelling(name) for name in set(ATTRIBUTE_NAME.findall(ctx.source))):
            return
        read = _attributes_read(ctx)
        for node in ctx.walk():
            for target in _assigned_attributes(node):
                name = target.attr.value
                if not is_requires_grad_misspelling(name):
                    continue
                # a method name is never a flag; another name read back is the program's own
                if name != f"{REAL}_" and (_on_self(target), name) in read:
                    continue
                yield Finding(
                    target,
                    f"`{name}` is not `requires_grad`: the assignment creates an unused attribute and "
                    "the parameters keep their gradient setting",
                    fix=Fix(
                        f"Set `{REAL}` (review: the gradient setting it names now takes effect)",
                        (replace(target.attr, REAL),),
                        safe=False,
                    ),
                )


def is_requires_grad_misspelling(name: str) -> bool:
    """A near miss of ``requires_grad``: a few edits away once case and underscores are ignored."""
    if name == REAL or name.startswith("_"):
        return False  # ``self._requires_grad``: a private flag of the program's own class
    folded = name.lower().replace("_", "")
    return "grad" in folded and _edit_distance(folded, REAL.replace("_", "")) <= MAX_EDITS


def _edit_distance(left: str, right: str) -> int:
    """Levenshtein distance with adjacent transpositions (``requries``)."""
    rows = [list(range(len(right) + 1))]
    for i, a in enumerate(left, start=1):
        row = [i]
        for j, b in enumerate(right, start=1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a != b))
            if i > 1 and j > 1 and a == right[j - 2] and left[i - 2] == b:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def _assigned_attributes(node: cst.CSTNode) -> list[cst.Attribute]:
    if isinstance(node, cst.Assign):
        targets = [target.target for target in node.targets]
    elif isinstance(node, cst.AnnAssign) and node.value is not None:
        targets = [node.target]
    else:
        return []
    return [target for target in targets if isinstance(target, cst.Attribute)]


def _on_self(attribute: cst.Attribute) -> bool:
    return isinstance(attribute.value, cst.Name) and attribute.value.value == "self"


def _attributes_read(ctx: ModuleContext) -> set[tuple[bool, str]]:
    """Attribute names the module loads, with whether the receiver is ``self`` (``self.flag``,
    ``cfg.flag``, ``getattr(x, "flag")``): a flag of the program's own objects is read back; a
    tensor's misspelled flag never is."""
    stored = {id(target) for node in ctx.walk() for target in _assigned_attributes(node)}
    read: set[tuple[bool, str]] = set()
    for node in ctx.walk():
        if isinstance(node, cst.Attribute) and id(node) not in stored:
            read.add((_on_self(node), node.attr.value))
        elif (name := _reflective_name(node)) is not None:
            read.update({(True, name), (False, name)})
    return read


def _reflective_name(node: cst.CSTNode) -> str | None:
    """``"flag"`` of ``getattr(x, "flag")`` / ``hasattr(x, "flag")``."""
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and len(node.args) > 1):
        return None
    name = node.args[1].value
    if node.func.value in ("getattr", "hasattr") and isinstance(name, cst.SimpleString):
        return str(name.evaluated_value)
    return None
