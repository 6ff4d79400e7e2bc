"""Latency of ``mllint server``: from a ``didChange`` to the ``publishDiagnostics`` of that version.

    python benchmarks/lsp_latency.py                    # a 2,000-line training module, 40 edits
    python benchmarks/lsp_latency.py --lines 5000 --edits 100

Writes a project (a models module and a long training module) to a temporary folder, starts the
server over stdio like an editor does, opens the training module and edits one line of it again
and again, alternately adding and removing a double softmax, so that every edit changes the
diagnostics. The time is all the server does between the two messages. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

MODELS = textwrap.dedent(
    """\
    import torch.nn.functional as F
    from torch import nn


    class Classifier(nn.Module):
        def __init__(self, features: int, classes: int):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, classes))

        def forward(self, x):
            return self.body(x)
    """
)

#: one stage of a training script: a model, a training loop and an evaluation, 40 lines
STAGE = textwrap.dedent(
    """\


    def build_{n}(features, classes):
        model = Classifier(features, classes)
        optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10)
        return model, optimizer, scheduler


    def train_{n}(model, optimizer, scheduler, loader, epochs=3):
        criterion = nn.CrossEntropyLoss()
        for epoch in range(epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                logits = model(x)
                loss = criterion(logits, y)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            scheduler.step()
        return model


    def evaluate_{n}(model, loader):
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in loader:
                predicted = model(x).argmax(dim=1)
                correct += (predicted == y).sum().item()
                total += y.numel()
        return correct / max(total, 1)


    def run_{n}(loader, features=32, classes=10):
        model, optimizer, scheduler = build_{n}(features, classes)
        train_{n}(model, optimizer, scheduler, loader)
        return evaluate_{n}(model, loader)
    """
)
HEADER = "import torch\nfrom torch import nn, optim\n\nfrom models import Classifier\n"
CLEAN_LINE = "            logits = model(x)"
BUGGY_LINE = "            logits = torch.softmax(model(x), dim=1)"


def write_project(folder: Path, lines: int) -> tuple[Path, int]:
    """The project, and the 0-based line of the training module that the edits change."""
    (folder / "models.py").write_text(MODELS)
    stages = max(1, (lines - HEADER.count("\n")) // STAGE.count("\n"))
    text = HEADER + "".join(STAGE.format(n=n) for n in range(stages))
    (folder / "train.py").write_text(text)
    # the last stage's training loop: the whole module comes before it
    edited = text.splitlines().index(CLEAN_LINE, len(text.splitlines()) - STAGE.count("\n"))
    return folder / "train.py", edited


async def measure(lines: int, edits: int) -> list[float]:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        train, edited_line = write_project(folder, lines)
        text = train.read_text()
        print(f"{train.name}: {text.count(chr(10))} lines; editing line {edited_line + 1}", file=sys.stderr)
        client = LanguageClient("lsp-latency", "1")
        published: dict[int | None, tuple[float, int]] = {}
        arrived = asyncio.Event()

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            published[params.version] = (time.perf_counter(), len(params.diagnostics))
            arrived.set()

        await client.start_io(sys.executable, "-m", "mllint", "server")
        await client.initialize_async(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(
                    text_document=lsp.TextDocumentClientCapabilities(
                        publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True)
                    )
                ),
                root_uri=folder.as_uri(),
            )
        )
        client.initialized(lsp.InitializedParams())
        uri = train.as_uri()
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri=uri, language_id="python", version=0, text=text))
        )

        async def wait_for(version: int) -> tuple[float, int]:
            while version not in published:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 60)
            return published[version]

        await wait_for(0)
        latencies = []
        for version in range(1, edits + 1):
            new_line = BUGGY_LINE if version % 2 else CLEAN_LINE
            old_length = len(CLEAN_LINE if version % 2 else BUGGY_LINE)
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(lsp.Position(edited_line, 0), lsp.Position(edited_line, old_length)), text=new_line
            )
            sent = time.perf_counter()
            client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(lsp.VersionedTextDocumentIdentifier(uri=uri, version=version), [change])
            )
            received, count = await wait_for(version)
            assert count == (1 if version % 2 else 0), f"version {version}: {count} diagnostics"
            latencies.append(received - sent)
            await asyncio.sleep(0.2)  # an editor's pause between edits: each edit is checked on its own
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=40)
    args = parser.parse_args()
    latencies = sorted(1000 * seconds for seconds in asyncio.run(measure(args.lines, args.edits)))
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(
        f"didChange -> publishDiagnostics over {len(latencies)} edits: median {statistics.median(latencies):.0f} ms, "
        f"p90 {p90:.0f} ms, max {latencies[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
