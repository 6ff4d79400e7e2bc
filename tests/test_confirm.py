"""``--confirm``: real torch, real models, real child processes.

``fixtures/confirm/`` marks each finding with the status running it must give:
``# expect: ML001 (confirmed)``. The fixtures are copied before the run, so that a top level that
did run would leave its marker file where the test looks for it.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import symtable
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mllint import cli
from mllint.config import ConfigError, load_file
from mllint.confirm.isolate import definitions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "confirm"
STATUS = re.compile(r"#\s*expect:\s*(?P<code>ML\d{3})\s*\((?P<status>confirmed|refuted|unconfirmed)\)")
TIMEOUT = "10"


def mllint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllint", "check", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    pytest.importorskip("torch")
    project = tmp_path_factory.mktemp("confirm") / "project"
    shutil.copytree(FIXTURES, project)
    args = ("--confirm", "--show-refuted", "--confirm-timeout", TIMEOUT, "--output-format", "json", ".")
    completed = mllint(*args, cwd=project)
    assert completed.returncode == 1, completed.stderr
    return project, json.loads(completed.stdout)


def test_each_finding_gets_the_status_its_marker_names(fixture_run: tuple[Path, list[dict[str, Any]]]) -> None:
    project, findings = fixture_run
    expected = {
        (path.name, row, match["code"]): match["status"]
        for path in sorted(project.glob("*.py"))
        for row, line in enumerate(path.read_text().splitlines(), start=1)
        if (match := STATUS.search(line))
    }
    reported = {
        (Path(f["filename"]).name, f["location"]["row"], f["code"]): f["confirmation"]["status"] for f in findings
    }
    assert reported == expected
    assert {status for status in expected.values()} == {"confirmed", "refuted", "unconfirmed"}


def test_the_script_top_level_never_runs(fixture_run: tuple[Path, list[dict[str, Any]]]) -> None:
    project, _ = fixture_run
    assert "top_level_ran.txt" in (project / "double_softmax.py").read_text()
    assert not (project / "top_level_ran.txt").exists()


def evidence(findings: list[dict[str, Any]], class_name: str) -> dict[str, str]:
    [confirmation] = [f["confirmation"] for f in findings if class_name in f["confirmation"]["evidence"]]
    return confirmation


def test_evidence_says_how_and_what(fixture_run: tuple[Path, list[dict[str, Any]]]) -> None:
    _, findings = fixture_run
    assert evidence(findings, "ProbabilityNet")["method"] == "torch.fx"
    gated = evidence(findings, "GatedNet")  # data-dependent control flow: fx fails, a real call is watched
    assert gated["method"] == "forward hooks"
    assert "sigmoid" in gated["evidence"]
    assert "(vocab_size, dim)" in evidence(findings, "TextClassifier")["evidence"]
    assert "factories" in evidence(findings, "TextClassifier")["evidence"]
    assert "Dropout" in evidence(findings, "DropoutNet")["evidence"]
    assert "no active dropout or batch-norm" in evidence(findings, "Encoder")["evidence"]
    assert "fc.weight, fc.bias" in evidence(findings, "Regressor")["evidence"]
    assert "SystemExit('no licence')" in evidence(findings, "Unlicensed")["evidence"]
    [hang] = [f["confirmation"] for f in findings if "timed out" in f["confirmation"]["evidence"]]
    assert f"after {TIMEOUT} s" in hang["evidence"]


CRASHES = textwrap.dedent(
    """\
    import os
    import signal

    import torch
    from torch import nn


    class Segfaults(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            os.kill(os.getpid(), signal.SIGSEGV)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=1)


    class Hog(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.buffer = bytearray(8 * 1024**3)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=1)


    class Sized(nn.Module):
        def __init__(self, features, classes):
            super().__init__()
            self.fc = nn.Linear(features, classes)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=1)


    def step(x, y, features):
        model = Segfaults()
        nn.functional.cross_entropy(model(x), y)
        other = Hog()
        nn.functional.cross_entropy(other(x), y)
        sized = Sized(features, 3)
        nn.functional.cross_entropy(sized(x), y)
    """
)
FACTORY = textwrap.dedent(
    """\
    import torch

    from models import Sized


    def tiny_sized():
        return Sized(5, 3), torch.randn(2, 5)
    """
)
PYPROJECT = textwrap.dedent(
    """\
    [tool.mllint.confirm]
    factories = { "models.Sized" = "factories:tiny_sized" }
    memory-mb = 3072
    """
)


def test_crashes_memory_and_factories(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "models.py").write_text(CRASHES)
    (tmp_path / "factories.py").write_text(FACTORY)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    completed = mllint("--confirm", "--output-format", "json", "models.py", cwd=tmp_path)
    assert completed.returncode == 1, completed.stderr
    by_class = {f["related"][0]["location"]["row"]: f["confirmation"] for f in json.loads(completed.stdout)}
    segfault, hog, sized = (by_class[row] for row in sorted(by_class))
    assert segfault["status"] == "unconfirmed"
    assert "SIGSEGV" in segfault["evidence"]
    assert hog["status"] == "unconfirmed"
    assert "MemoryError" in hog["evidence"]
    assert sized["status"] == "confirmed"
    assert "factory factories:tiny_sized" in sized["evidence"]


ENCODER = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Encoder(nn.Module):
        def __init__(self, dim=8, dropout=0.0):
            super().__init__()
            self.proj = nn.Linear(dim, dim)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            return self.drop(torch.relu(self.proj(x)))


    def embed(loader):
        encoder = Encoder()
        with torch.no_grad():
            return [encoder(x) for x in loader]
    """
)


def test_refuted_findings_are_hidden_and_not_counted(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "train.py").write_text(ENCODER)
    hidden = mllint("--confirm", "train.py", cwd=tmp_path)
    assert hidden.returncode == 0, hidden.stdout + hidden.stderr
    assert "1 refuted finding hidden (--show-refuted)." in hidden.stdout
    assert "ML004" not in hidden.stdout
    shown = mllint("--confirm", "--show-refuted", "train.py", cwd=tmp_path)
    assert shown.returncode == 0
    assert "ML004" in shown.stdout and "[refuted]" in shown.stdout
    sarif = json.loads(
        mllint("--confirm", "--show-refuted", "--output-format", "sarif", "train.py", cwd=tmp_path).stdout
    )
    [result] = sarif["runs"][0]["results"]
    assert result["properties"]["confirmation"]["status"] == "refuted"


def test_without_torch_confirm_exits_2_saying_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    monkeypatch.setattr(cli, "torch_available", lambda: False)
    assert cli.main(["check", "--confirm", "buggy.py"]) == 2
    assert "pip install torch==2.13.0" in capsys.readouterr().err


def test_without_confirm_nothing_runs_and_no_confirmation_is_reported(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    (project / "pyproject.toml").write_text('[tool.mllint.confirm]\nfactories = { "buggy.Net" = "buggy:make" }\n')
    assert cli.main(["check", "--output-format", "json", "--no-cache", "buggy.py"]) == 1
    [finding] = json.loads(capsys.readouterr().out)
    assert "confirmation" not in finding


@pytest.mark.parametrize("table", ["confirm = true", "[tool.mllint.confirm]\nenabled = true"])
def test_a_repository_config_cannot_turn_confirm_on(tmp_path: Path, table: str) -> None:
    config = tmp_path / "pyproject.toml"
    config.write_text(f"[tool.mllint]\n{table}\n" if "[" not in table else table + "\n")
    with pytest.raises(ConfigError, match="confirm"):
        load_file(config)


def test_definitions_only_keeps_what_the_class_needs() -> None:
    source = textwrap.dedent(
        """\
        import json
        import torch
        from torch import nn
        import wandb
        WIDTH = 4 * 2
        config = json.load(open("config.json"))
        tokens = torch.zeros(3)
        wandb.init(project="x")

        class Net(nn.Module):
            def __init__(self, tokens=None):
                super().__init__()
                self.fc = nn.Linear(WIDTH, torch.tensor(tokens).numel())

        def train():
            return config["lr"]

        train()
        """
    )
    kept = definitions(ast.parse(source), {"Net"}, symtable.symtable(source, "m.py", "exec"))
    assert [ast.unparse(s).splitlines()[0] for s in kept] == [
        "import torch",
        "from torch import nn",
        "WIDTH = 4 * 2",
        "class Net(nn.Module):",
    ]
