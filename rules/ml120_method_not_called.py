"""ML120: a training method named as a statement but never called."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from mllint.context import ModuleContext
from mllint.rule import Finding, Fix, Rule, replace
from mllint.semantic.names import dotted_name

#: methods whose only purpose is their effect: naming one without calling it does nothing
EFFECT_METHODS = {"eval", "train", "zero_grad", "step", "backward"}
#: one of them named and not followed by a call or anything else on its line (one pass over the text)
NAMED_NOT_CALLED = re.compile(r"\.(?:eval|train|zero_grad|step|backward)[ \t]*(?:[;#\r\n]|$)", re.MULTILINE)


class MethodNotCalled(Rule):
    """## What it does
    Finds `model.eval`, `model.train`, `optimizer.zero_grad`, `scheduler.step` or `loss.backward`
    written as a statement without parentheses.

    ## Why is this bad?
    Without the call the statement only looks the method up and throws it away: the model stays in
    train mode during evaluation (dropout on, batch-norm statistics updated by test data), gradients
    are not cleared, the learning rate never changes. Python accepts it silently.

    ## Example
    ```python
    def get_acc(model, loader):
        model.eval
        with torch.no_grad():
            ...
    ```

    ## Use instead
    ```python
    def get_acc(model, loader):
        model.eval()
        with torch.no_grad():
            ...
    ```
    A method passed on as a value (`hooks.append(model.eval)`, `callback = scheduler.step`) is not
    reported, nor an attribute of a project class that defines it as something other than a method.
    """

    code = "ML120"
    name = "method-not-called"
    summary = "eval / train / zero_grad / step / backward named without parentheses: nothing happens"
    severity = "error"

    @classmethod
    def relevant(cls, source: str) -> bool:
        return NAMED_NOT_CALLED.search(source) is not None

    def check(self, ctx: ModuleContext) -> Iterator[Finding]:
        for node in ctx.walk():
            if not (isinstance(node, cst.Expr) and isinstance(node.value, cst.Attribute)):
                continue
            attribute = node.value
            method = attribute.attr.value
            if method in EFFECT_METHODS and not _is_data_attribute(ctx, attribute):
                receiver = dotted_name(attribute.value) or "..."
                yield Finding(
                    attribute,
                    f"`{receiver}.{method}` is looked up but not called: add `()` (the statement does nothing)",
                    fix=Fix(
                        f"Call `{method}()` (review: the statement starts doing what it names)",
                        (replace(attribute, cst.Call(attribute)),),
                        safe=False,
                    ),
                )


def _is_data_attribute(ctx: ModuleContext, attribute: cst.Attribute) -> bool:
    """The receiver is an instance of a project class that holds ``method`` as data (a property, a
    split of a dataset) rather than as a method."""
    if ctx.project is None:
        return False
    classes = ctx.project.infer(ctx, attribute.value)
    project_classes = [q for q in classes if ctx.project.class_summary(q) is not None]
    if not project_classes:
        return False
    method = attribute.attr.value
    return all(not ctx.project.is_model_class(q) and not _defines_method(ctx, q, method) for q in project_classes)


def _defines_method(ctx: ModuleContext, class_qualname: str, method: str) -> bool:
    assert ctx.project is not None
    info = ctx.project.method(class_qualname, method)
    return info is not None and not any(
        (ctx.qualname(d.decorator) or dotted_name(d.decorator) or "").endswith("property") for d in info.node.decorators
    )
