"""The project index on real parses: call sites across modules, their bound on large trees, and
what the cache re-checks when a module changes."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import libcst as cst

from mllint.config import Settings
from mllint.context import ModuleContext
from mllint.registry import all_rules
from mllint.runner import LONG_FILE_CHARS, _long_files_first, check_registered, load_context, module_name_for
from mllint.semantic.project import MAX_CALLER_MODULES, FunctionInfo, ProjectIndex

HELPER = """
    def evaluate(model, loader):
        return [model(x) for x in loader]

    def local_use(model, loader):
        return evaluate(model, loader)
"""
CALLER = """
    from helpers import evaluate

    def run(model, loader):
        model.eval()
        return evaluate(model, loader)
"""


def project_with_callers(callers: int) -> ProjectIndex:
    project = ProjectIndex(load_context)
    project.register("helpers", Path("helpers.py"), textwrap.dedent(HELPER))
    for n in range(callers):
        project.register(f"caller_{n}", Path(f"caller_{n}.py"), textwrap.dedent(CALLER))
    return project


def evaluate_info(project: ProjectIndex) -> FunctionInfo:
    ctx = project.load("helpers")
    assert ctx is not None
    function = next(f for f in ctx.functions if f.name.value == "evaluate")
    info = project.function_info(function)
    assert info is not None
    return info


def test_call_sites_in_every_importing_module() -> None:
    project = project_with_callers(MAX_CALLER_MODULES)
    info = evaluate_info(project)
    modules = sorted(ctx.module_name for ctx, _ in project.call_sites(info))
    assert modules == sorted(["helpers", *(f"caller_{n}" for n in range(MAX_CALLER_MODULES))])
    assert project.callers_known(info)


def test_a_function_many_modules_call_is_followed_in_its_own_module_only() -> None:
    project = project_with_callers(MAX_CALLER_MODULES + 1)
    info = evaluate_info(project)
    assert [ctx.module_name for ctx, _ in project.call_sites(info)] == ["helpers"]
    assert not project.callers_known(info)
    # the importing modules were not parsed for the question
    assert set(project.modules) == {"helpers"}


def helper_fingerprint_after_an_importer_changes(callers: int) -> tuple[str, str]:
    project = project_with_callers(callers)
    before = project.fingerprints()["helpers"]
    project.replace_source("caller_0", textwrap.dedent(CALLER).replace("model.eval()", "model.train()"))
    return before, project.fingerprints()["helpers"]


def test_a_module_depends_on_the_modules_that_import_it() -> None:
    before, after = helper_fingerprint_after_an_importer_changes(MAX_CALLER_MODULES)
    assert before != after
    assert project_with_callers(MAX_CALLER_MODULES).dependents("caller_0") == {"caller_0", "helpers"}


def test_a_library_many_modules_import_does_not_depend_on_them() -> None:
    # their calls are never followed into it: a change in one of them leaves its findings as they were
    before, after = helper_fingerprint_after_an_importer_changes(MAX_CALLER_MODULES + 1)
    assert before == after
    project = project_with_callers(MAX_CALLER_MODULES + 1)
    assert project.dependents("caller_0") == {"caller_0"}
    assert project.dependents("helpers") == {"helpers", *(f"caller_{n}" for n in range(MAX_CALLER_MODULES + 1))}


def test_an_element_of_a_tuple_another_module_returns_is_inferred_in_that_module() -> None:
    project = ProjectIndex(load_context)
    factory = """
        from torch import nn as layers

        class Net(layers.Module):
            pass

        def build():
            return Net(), layers.CrossEntropyLoss()
    """
    train = """
        from factory import build

        model, criterion = build()
        model
        criterion
    """
    project.register("factory", Path("factory.py"), textwrap.dedent(factory))
    project.register("train", Path("train.py"), textwrap.dedent(train))
    ctx = project.load("train")
    assert ctx is not None
    model_use, criterion_use = (statement.body[0].value for statement in ctx.tree.body[-2:])
    # ``Net`` and ``layers`` are names of factory.py, unknown in train.py
    assert project.infer(ctx, model_use) == {"factory.Net"}
    assert project.infer(ctx, criterion_use) == {"torch.nn.CrossEntropyLoss"}


def project_of(modules: dict[str, str]) -> ProjectIndex:
    project = ProjectIndex(load_context)
    for name, source in modules.items():
        project.register(name, Path(f"{name}.py"), textwrap.dedent(source))
    return project


def last_expressions(ctx: ModuleContext, count: int) -> list[cst.BaseExpression]:
    return [statement.body[0].value for statement in ctx.tree.body[-count:]]  # type: ignore[attr-defined]


def test_an_instance_of_a_class_of_another_module_is_known_without_parsing_that_module() -> None:
    project = project_of(
        {
            "nets": "from torch import nn\n\nclass Net(nn.Module):\n    pass\n",
            "package": "from nets import Net\n",
            "train": "import package\n\nmodel = package.Net()\nmodel\n",
        }
    )
    ctx = project.load("train")
    assert ctx is not None
    [model_use] = last_expressions(ctx, 1)
    # the class is named where it is defined, not where it is re-exported
    assert project.infer(ctx, model_use) == {"nets.Net"}
    assert set(project.modules) == {"train"}


def test_an_attribute_no_class_assigns_is_unknown_without_inferring_its_owner() -> None:
    project = project_of(
        {
            "helpers": "def build():\n    return object()\n",
            "train": "from helpers import build\n\nbuild().missing\n",
        }
    )
    ctx = project.load("train")
    assert ctx is not None
    [use] = last_expressions(ctx, 1)
    assert project.infer(ctx, use) == frozenset()
    assert set(project.modules) == {"train"}, "the owner's value was not needed"


def test_every_way_of_assigning_to_self_passes_the_attribute_filter() -> None:
    source = """
        class Holder:
            def __init__(self, pair, stream):
                self.a, (self.b, _) = pair
                (self . c) = 1
                self.d: int = 2
                self.e += 3
                for self.f in range(3):
                    pass
                with open(stream) as self.g:
                    pass
                self.h.inner = 4
                self.i[0] = 5
                self.j()
    """
    project = project_of({"holder": source})
    assert all(project.may_assign_to_self(name) for name in "abcdefg")
    # an attribute of an attribute, an item, a call: no assignment to the attribute itself
    assert not any(project.may_assign_to_self(name) for name in "hij")


def test_a_module_that_names_a_function_without_calling_it_is_not_parsed_for_its_call_sites() -> None:
    project = project_with_callers(2)
    mention = '"""Calls evaluate, in words only."""\nfrom helpers import evaluate\n\n__all__ = ["evaluate"]\n'
    project.register("mentions", Path("mentions.py"), mention)
    info = evaluate_info(project)
    modules = sorted(ctx.module_name for ctx, _ in project.call_sites(info))
    assert modules == ["caller_0", "caller_1", "helpers"]
    assert "mentions" not in project.modules


def test_dropped_modules_are_freed_by_reference_counting() -> None:
    """Runs keep the cyclic garbage collector off: nothing built while checking a module (its scan,
    its control-flow graphs, the project's answers) may hold its tree in a reference cycle."""
    root = Path(__file__).resolve().parent.parent / "fixtures" / "project"
    settings = Settings(root=root)
    project = ProjectIndex(load_context)
    registered = []
    for path in sorted(root.rglob("*.py")):
        module_name, _ = module_name_for(path, root)
        project.register(module_name, path, path.read_text(encoding="utf-8"))
        registered.append((path, module_name))

    def live_trees() -> int:
        return sum(type(item) is cst.Module for item in gc.get_objects())

    rules = all_rules()
    collecting = gc.isenabled()
    gc.disable()
    try:
        # a first round imports what checks import lazily (some of it parses templates once)
        for path, module_name in registered:
            check_registered(project, path, module_name, rules, settings)
        project.trim(0)
        gc.collect()
        before = live_trees()
        for path, module_name in registered:
            check_registered(project, path, module_name, rules, settings)
        assert live_trees() > before
        project.trim(0)
        assert live_trees() == before
    finally:
        if collecting:
            gc.enable()


def test_a_name_a_module_only_imports_or_assigns_is_resolved_without_parsing_that_module() -> None:
    files = {
        "layers": "def attention(q, k):\n    return q @ k\n\nclass Block:\n    def run(self):\n        pass\n",
        "package": "from layers import attention, Block\n\nREGISTRY = dict()\n",
        "train": "import package\n\npackage.attention\npackage.Block.run\npackage.REGISTRY.get\n",
    }
    lazy, parsed = project_of(files), project_of(files)
    for module_name in files:
        parsed.load(module_name)
    attention = lazy.resolve_function("package.attention")
    assert attention is not None and attention.qualname == "layers.attention"
    run = lazy.resolve_function("package.Block.run")
    assert run is not None and run.qualname == "layers.Block.run"
    assert lazy.resolve_function("package.REGISTRY.get") is None
    # the package re-exports and assigns: its parse is not needed; of the other, the definitions asked for
    assert not lazy.modules and lazy.partly_parsed == {"layers": {"attention", "Block"}}
    for qualname in ("package.attention", "package.Block.run", "package.REGISTRY.get", "layers.Block"):
        lazily = lazy.resolve_function(qualname) or lazy.resolve_class(qualname)
        found = parsed.resolve_function(qualname) or parsed.resolve_class(qualname)
        assert (lazily and lazily.qualname) == (found and found.qualname), qualname
    # checking the module parses it in full, and every answer about it comes from that parse
    layers = lazy.load("layers", strict=True)
    assert not lazy.partly_parsed
    attention = lazy.resolve_function("package.attention")
    assert attention is not None and attention.ctx is layers


def test_the_evaluation_check_looks_into_no_helper_where_no_model_is_evaluated() -> None:
    project = project_of(
        {
            "inits": "def fill(weight):\n    weight.zero_()\n",
            "train": """
                import torch
                from inits import fill

                @torch.no_grad()
                def reset(layer):
                    fill(layer.weight)
            """,
        }
    )
    rule = next(rule for rule in all_rules() if rule.code == "ML004")
    diagnostics, failures = check_registered(project, Path("train.py"), "train", [rule], Settings(root=Path()))
    assert (diagnostics, failures) == ([], [])
    assert set(project.modules) == {"train"}, "no model run: the helper's events cannot matter"


def test_call_sites_are_found_in_the_definitions_that_may_call_alone() -> None:
    project = project_with_callers(0)
    caller = """
        from helpers import evaluate

        def unrelated(model):
            return model

        def run(model, loader):
            model.eval()
            return evaluate(model, loader)

        class Runner:
            def go(self, model, loader):
                return evaluate(model, loader)

        evaluate(None, [])
    """
    project.register("caller", Path("caller.py"), textwrap.dedent(caller))
    info = evaluate_info(project)
    sites = [(ctx.module_name, ctx.enclosing_function(call)) for ctx, call in project.call_sites(info)]
    names = [(module_name, function.name.value if function else None) for module_name, function in sites]
    assert sorted(names, key=str) == sorted(
        [("helpers", "local_use"), ("caller", "run"), ("caller", "go"), ("caller", None)], key=str
    )
    assert "caller" not in project.modules and project.partly_parsed == {"caller": {"run", "Runner"}}
    caller_ctx = next(ctx for ctx, _ in project.call_sites(info) if ctx.module_name == "caller")
    # the file's own positions: the lines of the definitions left out are blank, not removed
    assert caller_ctx.source.splitlines()[6] == "def run(model, loader):"
    assert caller_ctx.source.splitlines()[3] == ""
    assert caller_ctx.source.splitlines()[1] == "", "imports resolve through the module's summary"


def test_a_part_leaves_out_decorated_definitions_whole_and_keeps_positions() -> None:
    source = """
        import functools

        @functools.lru_cache
        def cached(x):
            return x

        @functools.total_ordering
        class Ordered:
            def __lt__(self, other):
                return True

        def wanted(x):
            return cached(x)
    """
    project = project_of({"helpers": source, "train": "from helpers import wanted\n"})
    wanted = project.resolve_function("helpers.wanted")
    assert wanted is not None and project.partly_parsed == {"helpers": {"wanted"}}
    assert wanted.ctx.code(wanted.node).strip().startswith("def wanted(x):")
    assert wanted.ctx.source.splitlines()[12] == "def wanted(x):"
    # what the kept function calls resolves, and is parsed the same way when asked for
    cached = project.resolve_function("helpers.cached")
    assert cached is not None and project.partly_parsed == {"helpers": {"wanted", "cached"}}


def test_a_part_keeps_the_module_code_but_not_its_imports_docstring_or_comments() -> None:
    source = """
        \"\"\"Losses.\"\"\"
        import torch.nn as nn

        # the criterion every trainer shares
        CRITERION = nn.CrossEntropyLoss()

        def other():
            return None

        def wanted():
            return CRITERION
    """
    project = project_of({"helpers": source, "train": "from helpers import wanted\n"})
    wanted = project.resolve_function("helpers.wanted")
    assert wanted is not None and project.partly_parsed == {"helpers": {"wanted"}}
    lines = wanted.ctx.source.splitlines()
    assert lines[1:5] == ["", "", "", ""] and lines[5] == "CRITERION = nn.CrossEntropyLoss()"
    assert lines[7:9] == ["", ""] and lines[10] == "def wanted():"
    returned = next(node for node in wanted.ctx.walk(wanted.node) if isinstance(node, cst.Return))
    assert returned.value is not None
    # the module's value, and the name its import binds, resolve as in the whole module
    assert project.infer(wanted.ctx, returned.value) == {"torch.nn.CrossEntropyLoss"}


def test_a_module_with_carriage_returns_is_parsed_in_full() -> None:
    project = project_of({"helpers": "def other():\r\n    pass\r\n\r\ndef wanted():\r\n    pass\r\n"})
    assert project.resolve_function("helpers.wanted") is not None
    assert set(project.modules) == {"helpers"} and not project.partly_parsed


def test_a_module_parsed_in_full_then_dropped_is_parsed_in_part_afterwards() -> None:
    project = project_of({"helpers": "def other():\n    pass\n\ndef wanted():\n    pass\n"})
    project.load("helpers")
    assert project.module_summary("helpers") is not None  # told from the full parse: no line numbers
    project.trim(0)
    wanted = project.resolve_function("helpers.wanted")
    assert wanted is not None and wanted.ctx.source.splitlines()[3] == "def wanted():"
    assert not project.modules and project.partly_parsed == {"helpers": {"wanted"}}


def test_worker_processes_get_the_longest_files_first() -> None:
    long_text = "x = 1\n" * (LONG_FILE_CHARS // 6 + 1)
    project = project_of({"a": "pass\n", "b": long_text, "c": "pass\n", "d": long_text * 2, "e": "pass\n"})
    registered = [(Path(f"{name}.py"), name) for name in "abcde"]
    order = [name for _, name in _long_files_first(registered, project)]
    assert order == ["d", "b", "a", "c", "e"]
