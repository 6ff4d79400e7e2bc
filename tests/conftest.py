from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

# a double softmax: the model's output is normalized, and CrossEntropyLoss normalizes again
BUGGY = textwrap.dedent(
    """\
    import torch
    import torch.nn.functional as F
    from torch import nn

    criterion = nn.CrossEntropyLoss()


    def train_step(model, x, y):
        probs = F.softmax(model(x), dim=1)
        return criterion(probs, y)
    """
)
BUGGY_ROW = 10
CLEAN = BUGGY.replace("probs = F.softmax(model(x), dim=1)", "probs = model(x)")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with one buggy and one clean training file, as the working directory."""
    (tmp_path / "buggy.py").write_text(BUGGY)
    (tmp_path / "clean.py").write_text(CLEAN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return tmp_path
