"""Class summaries read with CPython's parser answer what the libcst-parsed module would."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mllint.runner import load_context, module_name_for
from mllint.semantic.project import ProjectIndex

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

AWKWARD = {
    "pkg/__init__.py": """
        from .layers import Block as Reexported
        from . import layers
    """,
    "pkg/layers.py": """
        import torch.nn as nn
        from torch import nn as torch_nn
        from ..outside import Mixin

        class Block(nn.Module, Mixin, metaclass=Meta):
            def __init__(self):
                super().__init__()
                self.a, (self.b, _) = 1, (2, 3)
                self.c: int = 4
                for self.d in range(3):
                    pass
                with open("f") as self.e:
                    pass
                self.loss = nn.CrossEntropyLoss()
                self.activation: nn.Module = nn.GELU() if self.c else torch_nn.Tanh()
                self.inner = Block.Inner(4, 4)
                self.parallel = nn.DataParallel(self.inner)
                self.built = make_block()
                self.items = [nn.ReLU()]
                self.loss += 1

                def nested():
                    self.f = 5

            if True:
                def not_a_method(self):
                    self.g = 6

            class Inner(torch_nn.Linear):
                def forward(self, x):
                    return x

        def make_block():
            return Block()

        def factory():
            import torch.nn.functional as F

            class Local(*bases, layers.Block):
                async def forward(self, x):
                    return F.relu(x)

            return Local

        try:
            from fast import Base
        except ImportError:
            Base = object

        class Guarded(Base, pkg.Reexported):
            pass
    """,
}


def _projects(files: dict[Path, str], root: Path) -> tuple[ProjectIndex, ProjectIndex]:
    """The same modules twice: every one parsed with libcst, and none parsed."""
    parsed, unparsed = ProjectIndex(load_context), ProjectIndex(load_context)
    for path, source in files.items():
        module_name, _ = module_name_for(path, root)
        parsed.register(module_name, path, source)
        unparsed.register(module_name, path, source)
    parsed.load_all()
    return parsed, unparsed


def _assert_same_summaries(files: dict[Path, str], root: Path) -> ProjectIndex:
    """Every class's summary, asked of both projects, is the same; returns the unparsed one."""
    parsed, unparsed = _projects(files, root)
    assert parsed.classes
    for qualname in parsed.classes:
        assert unparsed.class_summary(qualname) == parsed.class_summary(qualname), qualname
    for module_name in parsed.modules:
        read, scanned = unparsed.module_summary(module_name), parsed.module_summary(module_name)
        assert read is not None and scanned is not None
        assert (read.bindings, read.definitions) == (scanned.bindings, scanned.definitions), module_name
    assert not unparsed.modules, "summaries must not parse modules with libcst"
    for qualname in parsed.classes:
        summary = parsed.class_summary(qualname)
        assert summary is not None
        for name in summary.attributes:
            # told from summaries where they can, by parsing the module where they cannot
            told = unparsed.values.class_attribute(qualname, name)
            assert told == parsed.values.class_attribute(qualname, name), (qualname, name)
    return unparsed


def test_awkward_classes(tmp_path: Path) -> None:
    files = {}
    for name, source in AWKWARD.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        files[path] = textwrap.dedent(source)
    unparsed = _assert_same_summaries(files, tmp_path)
    block = unparsed.class_summary("pkg.layers.Block")
    assert block is not None
    assert block.bases == ("torch.nn.Module", "outside.Mixin")
    assert block.methods == {"__init__"}
    assert {"a", "b", "c", "d", "e"} <= block.attributes
    local = unparsed.class_summary("pkg.layers.factory.Local")
    assert local is not None and local.methods == {"forward"}
    # a name the package re-exports resolves to the class it names, as a libcst lookup does
    assert unparsed.class_summary("pkg.Reexported") == block
    fresh = _projects(files, tmp_path)[1]
    # calls of outside names and of project classes are told by the summary alone...
    assert fresh.values.class_attribute("pkg.layers.Block", "loss") == {"torch.nn.CrossEntropyLoss"}
    assert fresh.values.class_attribute("pkg.layers.Block", "inner") == {"pkg.layers.Block.Inner"}
    assert not fresh.modules
    # ...a project function's returns by its parse
    assert fresh.values.class_attribute("pkg.layers.Block", "built") == {"pkg.layers.Block"}
    assert not fresh.modules and fresh.partly_parsed == {"pkg.layers": {"Block", "make_block"}}


@pytest.mark.parametrize("folder", ["", "project", "ml001_cross_file", "ml116_unseeded_training", "confirm"])
def test_fixture_classes(folder: str) -> None:
    root = FIXTURES / folder
    paths = sorted(root.rglob("*.py")) if folder else sorted(root.glob("*.py"))
    files = {path: path.read_text(encoding="utf-8") for path in paths}
    _assert_same_summaries(files, root)
