"""What the static pass knows about a model a finding concerns: enough for a child process to
import its class alone and build it. No torch here: this runs in every ``--confirm`` lint."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from mllint.rule import ModelSubject
from mllint.semantic.project import ClassInfo, ProjectIndex

#: literal constructor calls of a class kept as candidates for building it
MAX_CONSTRUCTIONS = 3


@dataclass(frozen=True)
class ModelProbe:
    """A dynamic check of one model class; equal probes are run once for all their findings."""

    check: str
    #: the class's name in the project index, as ``[tool.mllint.confirm] factories`` names it
    qualname: str
    path: str
    #: the folder its module is imported from, and its import name there
    import_root: str
    module: str
    #: its qualified name inside the module
    class_name: str
    without_grad: bool = False
    #: ``repr((args, kwargs))`` of the project's constructor calls whose arguments are all literals
    constructions: tuple[str, ...] = ()


def describe(project: ProjectIndex, check: str, subject: ModelSubject) -> ModelProbe | None:
    info = project.resolve_class(subject.qualname)
    if info is None:
        return None
    path = info.ctx.path.resolve()
    import_root, module = _import_location(path)
    prefix = info.ctx.module_name + "."
    class_name = info.qualname[len(prefix) :] if info.qualname.startswith(prefix) else info.node.name.value
    return ModelProbe(
        check=check,
        qualname=info.qualname,
        path=str(path),
        import_root=str(import_root),
        module=module,
        class_name=class_name,
        without_grad=subject.without_grad,
        constructions=tuple(_literal_constructions(project, info)),
    )


def _import_location(path: Path) -> tuple[Path, str]:
    """The folder above the file's outermost package, and the file's dotted name from there."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != folder.parent:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _literal_constructions(project: ProjectIndex, info: ClassInfo) -> list[str]:
    """``TextCNN(1000, 16, 3)`` in the class's module or a module importing it: arguments a
    constructor accepts for sure (unlike guessed ones)."""
    home = info.ctx.module_name
    graph = project.import_graph
    found: list[str] = []
    for module_name in [home, *(graph.predecessors(home) if home in graph else ())]:
        ctx = project.load(module_name)
        if ctx is None or info.node.name.value not in ctx.source:
            continue
        for call in ctx.calls:
            if project.resolve_callee(ctx, call) is not info:
                continue
            arguments = _literal_arguments(ctx.tree, call)
            if arguments is not None and arguments not in found:
                found.append(arguments)
                if len(found) == MAX_CONSTRUCTIONS:
                    return found
    return found


def _literal_arguments(tree: cst.Module, call: cst.Call) -> str | None:
    args: list[object] = []
    kwargs: dict[str, object] = {}
    for arg in call.args:
        if arg.star:
            return None
        try:
            value = ast.literal_eval(tree.code_for_node(arg.value))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        if arg.keyword is None:
            args.append(value)
        else:
            kwargs[arg.keyword.value] = value
    return repr((tuple(args), kwargs))
