"""The data-pipeline queries of the semantic layer on real parses: where a value comes from, and
which columns a pandas expression holds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import libcst as cst

from mllint.context import ModuleContext
from mllint.runner import load_context
from mllint.semantic.data import iterated_loaders
from mllint.semantic.frames import column_of, columns_of
from mllint.semantic.project import ProjectIndex
from mllint.semantic.sources import value_sources


def load(modules: dict[str, str]) -> dict[str, ModuleContext]:
    project = ProjectIndex(load_context)
    for name, source in modules.items():
        project.register(name, Path(f"{name}.py"), textwrap.dedent(source))
    loaded = {name: project.load(name) for name in modules}
    return {name: ctx for name, ctx in loaded.items() if ctx is not None}


def last_use(ctx: ModuleContext, name: str) -> cst.Name:
    return [node for node in ctx.walk() if isinstance(node, cst.Name) and node.value == name][-1]


def test_loader_followed_through_a_helper_in_another_module_and_a_parameter() -> None:
    contexts = load(
        {
            "data": """
                from torch.utils.data import DataLoader

                def make_loaders(train_set, val_set):
                    return DataLoader(train_set, shuffle=True), DataLoader(val_set)
            """,
            "train": """
                from tqdm import tqdm
                from data import make_loaders

                def run_epoch(loader):
                    for batch in enumerate(tqdm(loader)):
                        pass

                def main(a, b):
                    train_loader, val_loader = make_loaders(a, b)
                    run_epoch(train_loader)
            """,
        }
    )
    train = contexts["train"]
    loop = next(node for node in train.walk() if isinstance(node, cst.For))
    [loader] = iterated_loaders(train, loop)
    assert loader.ctx is contexts["data"]
    assert loader.ctx.code(loader.expr) == "DataLoader(train_set, shuffle=True)"


def test_alternatives_are_all_sources() -> None:
    ctx = load(
        {
            "m": """
                def pick(flag, a, b):
                    chosen = a if flag else b
                    return chosen
            """
        }
    )["m"]
    sources = value_sources(ctx, last_use(ctx, "chosen"))
    assert sorted(ctx.code(source.expr) for source in sources) == ["a", "b"]


def test_columns_of_drops_selections_and_filtered_lists() -> None:
    ctx = load(
        {
            "m": """
                import pandas as pd
                TARGET = "price"

                def f(path):
                    df = pd.read_csv(path).dropna()
                    dropped = df.drop(columns=["id"])
                    kept = df.drop(columns=[TARGET])
                    names = [c for c in df.columns.tolist() if c not in ("id", "zip")]
                    chosen = df.sample(frac=0.5)[names]
                    label = df[TARGET].values
                    unknown = df.drop(columns=computed())
                    return dropped, kept, chosen, label, unknown
            """
        }
    )["m"]
    dropped = columns_of(ctx, last_use(ctx, "dropped"))
    kept = columns_of(ctx, last_use(ctx, "kept"))
    chosen = columns_of(ctx, last_use(ctx, "chosen"))
    assert dropped is not None and dropped.root == "df" and dropped.holds("price") and not dropped.holds("id")
    assert kept is not None and not kept.holds("price")
    assert chosen is not None and chosen.holds("price") and not chosen.holds("zip")
    assert column_of(ctx, last_use(ctx, "label")) == ("df", "price")
    assert columns_of(ctx, last_use(ctx, "unknown")) is None
