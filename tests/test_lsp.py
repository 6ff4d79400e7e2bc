"""``mllint server`` driven by a real LSP client over stdio (pytest-lsp)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
CROSS_FILE = REPOSITORY / "fixtures" / "ml001_cross_file" / "pkg"
SERVER = [sys.executable, "-m", "mllint", "server"]
FAILING_RULE_SERVER = [sys.executable, str(Path(__file__).with_name("lsp_server_with_failing_rule.py"))]
TIMEOUT = 30.0

BUGGY = textwrap.dedent(
    """\
    import torch.nn.functional as F
    from torch import nn

    criterion = nn.CrossEntropyLoss()


    def train_step(model, x, y):
        probs = F.softmax(model(x), dim=1)
        return criterion(probs, y)
    """
)
BUGGY_LINE = 8  # 0-based: the criterion(...) line
CLEAN = BUGGY.replace("probs = F.softmax(model(x), dim=1)", "probs = model(x)")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A project: the cross-file package (model in models.py, training in train.py) and a pyproject."""
    shutil.copytree(CROSS_FILE, tmp_path / "pkg")
    (tmp_path / "pyproject.toml").write_text('[tool.mllint]\nselect = ["ML0"]\n')
    return tmp_path


def push_capabilities() -> lsp.ClientCapabilities:
    """A client that receives diagnostics (publishDiagnostics) and does not pull them."""
    return lsp.ClientCapabilities(
        text_document=lsp.TextDocumentClientCapabilities(
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(
                related_information=True, code_description_support=True, version_support=True
            ),
            hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.Markdown]),
            code_action=lsp.CodeActionClientCapabilities(),
        ),
        workspace=lsp.WorkspaceClientCapabilities(
            configuration=True,
            did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True),
        ),
    )


async def start(client: LanguageClient, root: Path, capabilities: lsp.ClientCapabilities, **options: object) -> None:
    registrations: list[lsp.Registration] = []
    client.registrations = registrations  # type: ignore[attr-defined]

    @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(_client: LanguageClient, params: lsp.RegistrationParams) -> None:
        registrations.extend(params.registrations)

    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options or None,
        )
    )


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await start(lsp_client, workspace, push_capabilities())
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def settings_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await start(lsp_client, workspace, push_capabilities(), ignore=["ML001"])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def bare_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """Initialized only: the test ends the session itself."""
    await start(lsp_client, workspace, push_capabilities())
    yield


@pytest_lsp.fixture(config=ClientServerConfig(server_command=FAILING_RULE_SERVER))
async def failing_rule_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    await start(lsp_client, workspace, push_capabilities())
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def pull_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """A client that pulls diagnostics (textDocument/diagnostic), as VS Code does."""
    capabilities = push_capabilities()
    assert capabilities.text_document is not None and capabilities.workspace is not None
    capabilities.text_document.diagnostic = lsp.DiagnosticClientCapabilities(related_document_support=True)
    capabilities.workspace.diagnostics = lsp.DiagnosticWorkspaceClientCapabilities(refresh_support=True)
    await start(lsp_client, workspace, capabilities)
    yield
    await lsp_client.shutdown_session()


async def published(
    client: LanguageClient, uri: str, accept: Callable[[Sequence[lsp.Diagnostic]], bool]
) -> Sequence[lsp.Diagnostic]:
    """The diagnostics last published for ``uri``, once they satisfy ``accept``."""

    async def poll() -> Sequence[lsp.Diagnostic]:
        while uri not in client.diagnostics or not accept(client.diagnostics[uri]):
            await asyncio.sleep(0.02)
        return client.diagnostics[uri]

    return await asyncio.wait_for(poll(), TIMEOUT)


def codes(diagnostics: Sequence[lsp.Diagnostic]) -> list[str]:
    return sorted(str(d.code) for d in diagnostics)


async def pulled_codes(client: LanguageClient, uri: str) -> list[str]:
    """The codes of the diagnostics the client pulls for ``uri`` (textDocument/diagnostic)."""
    report = await client.text_document_diagnostic_async(
        lsp.DocumentDiagnosticParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert isinstance(report, lsp.RelatedFullDocumentDiagnosticReport)
    return codes(report.items)


def has(*wanted: str) -> Callable[[Sequence[lsp.Diagnostic]], bool]:
    return lambda diagnostics: codes(diagnostics) == sorted(wanted)


def open_document(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    text = path.read_text() if text is None else text
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    )
    return uri


def replace_all(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def edit(client: LanguageClient, uri: str, version: int, span: lsp.Range, text: str) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangePartial(range=span, text=text)],
        )
    )


@pytest.mark.asyncio
async def test_open_reports_from_the_buffer(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "buggy.py"
    path.write_text(CLEAN)  # the disk copy is clean: the diagnostic can only come from the buffer
    uri = open_document(client, path, BUGGY)
    [diagnostic] = await published(client, uri, has("ML001"))
    assert diagnostic.range.start.line == BUGGY_LINE
    assert diagnostic.source == "mllint"
    assert diagnostic.severity == lsp.DiagnosticSeverity.Error
    assert diagnostic.code_description is not None and "ml001" in diagnostic.code_description.href
    [note] = diagnostic.related_information or []
    assert note.location.uri == uri and note.location.range.start.line == BUGGY_LINE - 1
    assert "softmax" in note.message


@pytest.mark.asyncio
async def test_change_and_save(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "buggy.py"
    path.write_text(BUGGY)
    uri = open_document(client, path)
    await published(client, uri, has("ML001"))
    # an incremental edit: drop the softmax, keep the call
    softmax_line = BUGGY.splitlines()[BUGGY_LINE - 1]
    start = softmax_line.index("F.softmax(")
    span = lsp.Range(lsp.Position(BUGGY_LINE - 1, start), lsp.Position(BUGGY_LINE - 1, len(softmax_line)))
    edit(client, uri, 2, span, "model(x)")
    await published(client, uri, has())
    # unsaved: the disk still holds the bug, the buffer does not; saving keeps the buffer's answer
    path.write_text(CLEAN)
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(lsp.TextDocumentIdentifier(uri=uri)))
    replace_all(client, uri, 3, BUGGY)
    await published(client, uri, has("ML001"))


@pytest.mark.asyncio
async def test_cross_file_update(client: LanguageClient, workspace: Path) -> None:
    models, train = workspace / "pkg" / "models.py", workspace / "pkg" / "train.py"
    train_uri = open_document(client, train)
    [diagnostic] = await published(client, train_uri, has("ML001"))
    assert diagnostic.range.start.line == 12
    [note] = diagnostic.related_information or []
    assert note.location.uri == models.as_uri()
    # the model's forward in the open models.py buffer stops normalizing: train.py is re-checked unedited
    models_text = models.read_text()
    models_uri = open_document(client, models, models_text)
    await published(client, models_uri, has())
    replace_all(client, models_uri, 2, models_text.replace("F.softmax(self.body(x), dim=-1)", "self.body(x)"))
    await published(client, train_uri, has())
    # and back
    replace_all(client, models_uri, 3, models_text)
    await published(client, train_uri, has("ML001"))


@pytest.mark.asyncio
async def test_watched_file_change_on_disk(client: LanguageClient, workspace: Path) -> None:
    models, train = workspace / "pkg" / "models.py", workspace / "pkg" / "train.py"
    train_uri = open_document(client, train)
    await published(client, train_uri, has("ML001"))
    [registration] = client.registrations  # type: ignore[attr-defined]
    assert registration.method == lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES
    models.write_text(models.read_text().replace("F.softmax(self.body(x), dim=-1)", "self.body(x)"))
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams([lsp.FileEvent(uri=models.as_uri(), type=lsp.FileChangeType.Changed)])
    )
    await published(client, train_uri, has())


async def code_actions(
    client: LanguageClient, uri: str, span: lsp.Range, diagnostics: list[lsp.Diagnostic]
) -> list[lsp.CodeAction]:
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=span,
            context=lsp.CodeActionContext(diagnostics=diagnostics),
        )
    )
    return [action for action in actions or [] if isinstance(action, lsp.CodeAction)]


def applied(text: str, action: lsp.CodeAction, uri: str) -> str:
    """The text after the action's one-line edit, applied as a client would."""
    assert action.edit is not None and action.edit.changes is not None
    [text_edit] = action.edit.changes[uri]
    start, end = text_edit.range.start, text_edit.range.end
    assert start.line == end.line
    lines = text.splitlines(keepends=True)
    line = lines[start.line]
    lines[start.line] = line[: start.character] + text_edit.new_text + line[end.character :]
    return "".join(lines)


@pytest.mark.asyncio
async def test_code_action_adds_and_extends_noqa(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "buggy.py"
    text = BUGGY.replace("return criterion(probs, y)", "return criterion(probs, y)  # noqa: ML005")
    uri = open_document(client, path, text)
    [diagnostic] = await published(client, uri, has("ML001"))
    [action] = await code_actions(client, uri, diagnostic.range, [diagnostic])
    assert action.title == "Ignore ML001 for this line"
    # applied as the client would, then sent back as a change: the diagnostic is gone
    fixed = applied(text, action, uri)
    assert "return criterion(probs, y)  # noqa: ML005, ML001\n" in fixed
    replace_all(client, uri, 2, fixed)
    await published(client, uri, has())


@pytest.mark.asyncio
async def test_code_action_appends_a_comment(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "buggy.py", BUGGY)
    [diagnostic] = await published(client, uri, has("ML001"))
    # a client that sends no diagnostics in the context gets those under the cursor
    [action] = await code_actions(client, uri, lsp.Range(diagnostic.range.start, diagnostic.range.start), [])
    assert action.edit is not None and action.edit.changes is not None
    [text_edit] = action.edit.changes[uri]
    assert text_edit.new_text == "  # noqa: ML001"
    assert text_edit.range.start == lsp.Position(BUGGY_LINE, len(BUGGY.splitlines()[BUGGY_LINE]))


@pytest.mark.asyncio
async def test_code_action_applies_the_rules_fix(client: LanguageClient, workspace: Path) -> None:
    text = BUGGY.replace(
        "probs = F.softmax(model(x), dim=1)\n    return criterion(probs, y)",
        "return criterion(F.softmax(model(x), dim=1), y)",
    )
    uri = open_document(client, workspace / "buggy.py", text)
    [diagnostic] = await published(client, uri, has("ML001"))
    fix, ignore = await code_actions(client, uri, diagnostic.range, [diagnostic])
    assert fix.title.startswith("Pass the logits to the loss") and fix.is_preferred
    assert ignore.title == "Ignore ML001 for this line"
    fixed = applied(text, fix, uri)
    assert "return criterion(model(x), y)\n" in fixed
    replace_all(client, uri, 2, fixed)
    await published(client, uri, has())


@pytest.mark.asyncio
async def test_hover_shows_the_rule_documentation(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "buggy.py", BUGGY)
    [diagnostic] = await published(client, uri, has("ML001"))
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=diagnostic.range.start)
    )
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    text = hover.contents.value
    assert "ML001" in text and "double-softmax" in text
    for heading in ("## What it does", "## Why is this bad?", "## Use instead"):
        assert heading in text
    outside = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(0, 0))
    )
    assert outside is None


@pytest.mark.asyncio
async def test_syntax_error_then_fixed(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(
        client, workspace / "buggy.py", BUGGY.replace("def train_step(model, x, y):", "def train_step(")
    )
    [diagnostic] = await published(client, uri, has("ML000"))
    assert "syntax error" in diagnostic.message
    replace_all(client, uri, 2, BUGGY)
    await published(client, uri, has("ML001"))


@pytest.mark.asyncio
async def test_pyproject_change_reloads_the_selection(client: LanguageClient, workspace: Path) -> None:
    uri = open_document(client, workspace / "buggy.py", BUGGY)
    await published(client, uri, has("ML001"))
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text('[tool.mllint]\nignore = ["ML001"]\n')
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams([lsp.FileEvent(uri=pyproject.as_uri(), type=lsp.FileChangeType.Changed)])
    )
    await published(client, uri, has())
    # a broken configuration is reported; the server keeps serving with the defaults
    pyproject.write_text('[tool.mllint]\nselect = "ML001"\n')
    client.workspace_did_change_watched_files(
        lsp.DidChangeWatchedFilesParams([lsp.FileEvent(uri=pyproject.as_uri(), type=lsp.FileChangeType.Changed)])
    )
    await published(client, uri, has("ML001"))
    assert any("must be a list of strings" in message.message for message in client.messages)


@pytest.mark.asyncio
async def test_client_settings(settings_client: LanguageClient, workspace: Path) -> None:
    """initializationOptions select the rules; the client's ``mllint`` settings section replaces them."""
    client = settings_client
    path = workspace / "buggy.py"
    uri = open_document(client, path, BUGGY + "\ntry:\n    criterion(x, y).backward()\nexcept Exception:\n    pass\n")
    await published(client, uri, has("ML005"))
    client.set_configuration({"select": ["ML001"]}, section="mllint")
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    await published(client, uri, has("ML001"))


@pytest.mark.asyncio
async def test_failing_rule_is_logged_and_the_server_goes_on(
    failing_rule_client: LanguageClient, workspace: Path
) -> None:
    client = failing_rule_client
    text = BUGGY + "\n\ndef explode():\n    pass\n"
    uri = open_document(client, workspace / "buggy.py", text)
    # the other rules still report
    await published(client, uri, has("ML001"))
    errors = [m.message for m in client.log_messages if m.type == lsp.MessageType.Error]
    assert any("rule ML099 failed" in message and "the rule broke" in message for message in errors)
    # and the server keeps answering
    replace_all(client, uri, 2, CLEAN + "\n\ndef explode():\n    pass\n")
    await published(client, uri, has())
    hover = await client.text_document_hover_async(
        lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=uri), position=lsp.Position(0, 0))
    )
    assert hover is None


@pytest.mark.asyncio
async def test_pull_diagnostics(pull_client: LanguageClient, workspace: Path) -> None:
    client = pull_client
    models, train = workspace / "pkg" / "models.py", workspace / "pkg" / "train.py"
    train_uri = open_document(client, train)

    assert await pulled_codes(client, train_uri) == ["ML001"]
    models_text = models.read_text()
    models_uri = open_document(client, models, models_text)
    assert await pulled_codes(client, models_uri) == []
    refreshed = client.diagnostic_refresh_count
    replace_all(client, models_uri, 2, models_text.replace("F.softmax(self.body(x), dim=-1)", "self.body(x)"))
    assert await pulled_codes(client, models_uri) == []
    # the change concerns the open train.py: the client is asked to pull again, and gets the new answer
    assert client.diagnostic_refresh_count > refreshed
    assert await pulled_codes(client, train_uri) == []
    assert train_uri not in client.diagnostics  # nothing pushed to a pulling client


@pytest.mark.asyncio
async def test_shutdown_then_exit(bare_client: LanguageClient) -> None:
    await bare_client.shutdown_async(None)
    bare_client.exit(None)
    assert bare_client._server is not None
    assert await asyncio.wait_for(bare_client._server.wait(), TIMEOUT) == 0


@pytest.mark.asyncio
async def test_exit_without_shutdown_is_an_error(bare_client: LanguageClient) -> None:
    bare_client.exit(None)
    assert bare_client._server is not None
    assert await asyncio.wait_for(bare_client._server.wait(), TIMEOUT) == 1


NOTEBOOK_CELLS = [
    "import torch.nn.functional as F\nfrom torch import nn\n\ncriterion = nn.CrossEntropyLoss()\n",
    "Training, one step:",  # a markdown cell: counted, not checked
    "def train_step(model, x, y):\n    probs = F.softmax(model(x), dim=1)\n    return criterion(probs, y)\n",
]


def open_notebook(client: LanguageClient, path: Path) -> tuple[str, list[str]]:
    """Open a notebook of NOTEBOOK_CELLS as an editor does (notebookDocument/didOpen); its URI and its cells'."""
    uri = path.as_uri()
    cell_uris = [f"vscode-notebook-cell:{path}#cell{n}" for n in range(len(NOTEBOOK_CELLS))]
    kinds = [lsp.NotebookCellKind.Code, lsp.NotebookCellKind.Markup, lsp.NotebookCellKind.Code]
    languages = ["python", "markdown", "python"]
    client.notebook_document_did_open(
        lsp.DidOpenNotebookDocumentParams(
            notebook_document=lsp.NotebookDocument(
                uri=uri,
                notebook_type="jupyter-notebook",
                version=1,
                cells=[lsp.NotebookCell(kind=kind, document=cell) for kind, cell in zip(kinds, cell_uris, strict=True)],
            ),
            cell_text_documents=[
                lsp.TextDocumentItem(uri=cell, language_id=language, version=1, text=text)
                for cell, language, text in zip(cell_uris, languages, NOTEBOOK_CELLS, strict=True)
            ],
        )
    )
    return uri, cell_uris


@pytest.mark.asyncio
async def test_notebook_cells_are_checked_as_one_program(client: LanguageClient, workspace: Path) -> None:
    uri, (imports, _, training) = open_notebook(client, workspace / "train.ipynb")
    # the loss is defined in the first cell and fed softmax output in the third
    [diagnostic] = await published(client, training, has("ML001"))
    assert diagnostic.range.start.line == 2
    await published(client, imports, has())  # the first cell is published too, empty
    # an edit of the third cell, as the editor sends it, clears it
    fixed = NOTEBOOK_CELLS[2].replace("F.softmax(model(x), dim=1)", "model(x)")
    client.notebook_document_did_change(
        lsp.DidChangeNotebookDocumentParams(
            notebook_document=lsp.VersionedNotebookDocumentIdentifier(uri=uri, version=2),
            change=lsp.NotebookDocumentChangeEvent(
                cells=lsp.NotebookDocumentCellChanges(
                    text_content=[
                        lsp.NotebookDocumentCellContentChanges(
                            document=lsp.VersionedTextDocumentIdentifier(uri=training, version=2),
                            changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)],
                        )
                    ]
                )
            ),
        )
    )
    await published(client, training, has())


@pytest.mark.asyncio
async def test_a_notebook_cells_diagnostics_are_pulled(pull_client: LanguageClient, workspace: Path) -> None:
    _, (imports, _, training) = open_notebook(pull_client, workspace / "train.ipynb")
    assert await pulled_codes(pull_client, training) == ["ML001"]
    assert await pulled_codes(pull_client, imports) == []
