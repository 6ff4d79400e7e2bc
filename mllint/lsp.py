"""``mllint server``: the linter as a language server over stdio (pygls and lsprotocol).

Open Python buffers are checked as they are typed, against a project index of the workspace kept
between checks (:class:`mllint.runner.LiveProject`): an edit of ``models.py`` re-checks the open
``train.py`` that trains its model. Every check runs on one worker thread, in order, so that the
event loop keeps reading messages while a large file is analyzed.
"""

from __future__ import annotations

import asyncio
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

from mllint import __version__
from mllint.config import ConfigError, Settings, discover, override
from mllint.diagnostics import INVALID_FILE_CODE, Diagnostic, Position, RuleFailure
from mllint.discovery import discover_files
from mllint.noqa import noqa_edit
from mllint.notebook import Notebook, join_cells
from mllint.registry import rule_by_code, selected_rules
from mllint.rule import Rule
from mllint.runner import LiveProject, SourceError, in_cells, read_module

T = TypeVar("T")

SOURCE = "mllint"
#: notebooks whose Python cells the server diagnoses, as one program in cell order (as the CLI does)
NOTEBOOK_SYNC = lsp.NotebookDocumentSyncOptions(
    notebook_selector=[lsp.NotebookDocumentFilterWithCells(cells=[lsp.NotebookCellLanguage(language="python")])],
    save=True,
)
CONFIG_FILE = "pyproject.toml"
SEVERITIES = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "info": lsp.DiagnosticSeverity.Information,
}
#: the line breaks of Python and of LSP positions (``str.splitlines`` knows more)
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ClientOptions:
    """Rule selection from the editor: ``select`` replaces the workspace's, the others add to it."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object) -> ClientOptions:
        """From ``initializationOptions`` or the ``mllint`` configuration section; other keys are ignored."""
        if not isinstance(value, dict):
            return cls()

        def codes(key: str) -> tuple[str, ...] | None:
            listed = value.get(key)
            return tuple(str(code).strip().upper() for code in listed) if isinstance(listed, list) else None

        return cls(codes("select"), codes("extendSelect") or (), codes("ignore") or ())

    def apply(self, settings: Settings) -> Settings:
        return override(
            settings,
            select=self.select,
            extend_select=settings.extend_select + self.extend_select,
            ignore=settings.ignore + self.ignore,
        )


@dataclass
class Report:
    """A document's diagnostics as last checked, kept for hover and code actions."""

    version: int | None
    items: list[tuple[Diagnostic, lsp.Diagnostic]] = field(default_factory=list)
    failures: list[RuleFailure] = field(default_factory=list)


@dataclass(frozen=True)
class ActionTarget:
    """A diagnostic a code action is asked for, with the document as it is now."""

    uri: str
    document: TextDocument
    #: the diagnostic as the client shows it (its range may have moved with edits)
    diagnostic: lsp.Diagnostic
    #: the engine's diagnostic, when the document is unchanged since it was checked
    reported: Diagnostic | None


def ignore_for_line(target: ActionTarget) -> lsp.CodeAction | None:
    """ "Ignore ML001 for this line": adds ``# noqa: ML001``, or the code to the line's noqa comment."""
    code = target.diagnostic.code
    if not isinstance(code, str) or code == INVALID_FILE_CODE:
        return None
    row = target.diagnostic.range.start.line
    edit = noqa_edit(target.document.source, row + 1, code)
    if edit is None:
        return None
    start, end, text = edit
    span = ServerTextRange(ServerTextPosition(row, start), ServerTextPosition(row, end))
    client_range = target.document.range_to_client_units(span)
    return lsp.CodeAction(
        title=f"Ignore {code} for this line",
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[target.diagnostic],
        edit=lsp.WorkspaceEdit(changes={target.uri: [lsp.TextEdit(client_range, text)]}),
    )


def apply_rule_fix(target: ActionTarget) -> lsp.CodeAction | None:
    """The rule's own fix, offered while the document is as it was checked (the edits' positions
    are those of that text); an unsafe fix says so in its title and is not the preferred action."""
    fix = target.reported.fix if target.reported is not None else None
    if fix is None or any(edit.cell is not None for edit in fix.edits):
        return None
    edits = [
        lsp.TextEdit(target.document.range_to_client_units(server_range(edit.start, edit.end)), edit.content)
        for edit in fix.edits
    ]
    safe = fix.applicability == "safe"
    return lsp.CodeAction(
        title=fix.message if safe else f"{fix.message} [unsafe]",
        kind=lsp.CodeActionKind.QuickFix,
        diagnostics=[target.diagnostic],
        is_preferred=safe,
        edit=lsp.WorkspaceEdit(changes={target.uri: edits}),
    )


#: the code actions a diagnostic offers, in order
CODE_ACTIONS: tuple[Callable[[ActionTarget], lsp.CodeAction | None], ...] = (apply_rule_fix, ignore_for_line)


def lines_of(source: str) -> list[str]:
    return LINE_BREAK.split(source)


def client_range(codec: PositionCodec, lines: list[str], start: Position, end: Position) -> lsp.Range:
    """Engine positions (1-based rows and code-point columns) in the client's units."""
    return codec.range_to_client_units(lines, server_range(start, end))


def server_range(start: Position, end: Position) -> ServerTextRange:
    """Engine positions (1-based) as a 0-based range in code points."""
    return ServerTextRange(
        ServerTextPosition(start.row - 1, start.column - 1), ServerTextPosition(end.row - 1, end.column - 1)
    )


def hover_text(rule: type[Rule]) -> str:
    return f"**{rule.code}** `{rule.name}`: {rule.summary}\n\n{rule.documentation()}\n\n[Documentation]({rule.url()})"


class MllintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            SOURCE,
            __version__,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=NOTEBOOK_SYNC,
        )
        self.root = Path.cwd()
        self.options = ClientOptions()
        self.rules: list[type[Rule]] = []
        self.live: LiveProject | None = None
        #: the client pulls diagnostics (``textDocument/diagnostic``) instead of receiving them
        self.pull = False
        self.shut_down = False
        self.reports: dict[str, Report] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllint-lsp")
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        #: open documents whose text the project index does not have yet, and the versions it has
        self._dirty: set[str] = set()
        self._synced: dict[str, int | None] = {}
        self._to_publish: set[str] = set()
        self._round: asyncio.Task[None] | None = None
        self._excluded: dict[Path, bool] = {}

    # -- plumbing ----------------------------------------------------------------------------
    async def on_worker(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    def log(self, message: str, kind: lsp.MessageType = lsp.MessageType.Info) -> None:
        self.window_log_message(lsp.LogMessageParams(type=kind, message=f"mllint: {message}"))

    def log_exception(self, doing: str) -> None:
        self.log(f"{doing} failed (the server goes on):\n{traceback.format_exc()}", lsp.MessageType.Error)

    def path_of(self, uri: str) -> Path | None:
        """The file of a Python document, None for other documents."""
        if not uri.startswith("file:") or self.workspace.get_notebook_document(cell_uri=uri) is not None:
            return None
        fs_path = to_fs_path(uri)
        if fs_path is None:
            return None
        path = Path(fs_path)
        if self.workspace.get_notebook_document(notebook_uri=uri) is not None:
            return path
        document = self.workspace.text_documents.get(uri)
        is_python = path.suffix == ".py" or (document is not None and document.language_id == "python")
        return path if is_python else None

    def buffer(self, uri: str) -> tuple[str, int | None] | None:
        """The unsaved text of an open document and its version; for a notebook, its code cells
        joined into one program."""
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is not None:
            return self.joined(notebook).source, notebook.version
        document = self.workspace.text_documents.get(uri)
        return (document.source, document.version) if document is not None else None

    def joined(self, notebook: lsp.NotebookDocument) -> Notebook:
        cells = [
            self.workspace.get_text_document(cell.document).source if cell.kind == lsp.NotebookCellKind.Code else None
            for cell in notebook.cells
        ]
        return join_cells(cells, {})

    def open_uris(self, paths: Iterable[Path] | None = None) -> set[str]:
        """The open Python documents (of ``paths`` only, when given)."""
        wanted = None if paths is None else set(paths)
        return {
            uri
            for uri in [*self.workspace.text_documents, *self.workspace.notebook_documents]
            if (path := self.path_of(uri)) is not None and (wanted is None or path in wanted)
        }

    # -- configuration -----------------------------------------------------------------------
    def load_configuration(self) -> tuple[LiveProject, list[type[Rule]], list[str]]:
        """Settings from the workspace's pyproject.toml and the client's options, and a project index
        of the workspace's files. Problems are returned as messages; the defaults stand in."""
        problems: list[str] = []
        try:
            settings = discover(self.root)
        except ConfigError as error:
            problems.append(str(error))
            settings = Settings()
        if settings.source is None:
            settings = replace(settings, root=self.root)
        rules: list[type[Rule]] = []
        for candidate, origin in ((self.options.apply(settings), "editor settings"), (settings, "workspace settings")):
            try:
                rules = selected_rules(candidate)
                break
            except ConfigError as error:
                problems.append(f"{origin}: {error}")
        else:
            rules = selected_rules(Settings())
        live = LiveProject(settings)
        live.register_files(discover_files([self.root], settings))
        return live, rules, problems

    async def reconfigure(self) -> None:
        """(Re)load the configuration and re-check every open document with it."""
        try:
            live, rules, problems = await self.on_worker(self.load_configuration)
        except Exception:  # noqa: BLE001 - a broken configuration must not stop the server
            self.log_exception("loading the configuration")
            live, rules, problems = LiveProject(Settings(root=self.root)), selected_rules(Settings()), []
        for problem in problems:
            self.log(problem, lsp.MessageType.Error)
            self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Error, message=f"mllint: {problem}"))
        self.live, self.rules = live, rules
        self._excluded.clear()
        self._dirty |= self.open_uris()
        self._ready.set()
        self.log(f"{len(rules)} rules selected; workspace {self.root}")
        await self.documents_changed(self.open_uris())

    async def read_client_settings(self) -> None:
        """The ``mllint`` section of the client's settings, where the client offers them."""
        workspace = self.client_capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        try:
            [section] = await self.workspace_configuration_async(
                lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section=SOURCE)])
            )
        except Exception:  # noqa: BLE001 - a client that fails to answer keeps the initial options
            self.log_exception("reading the client's settings")
            return
        if section is not None:
            self.options = ClientOptions.parse(section)

    async def watch_files(self) -> None:
        workspace = self.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace else None
        if watched is None or not watched.dynamic_registration:
            return
        watchers = [
            lsp.FileSystemWatcher(glob_pattern=f"**/{CONFIG_FILE}"),
            lsp.FileSystemWatcher(glob_pattern="**/*.py"),
        ]
        registration = lsp.Registration(
            id="mllint-watched-files",
            method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=lsp.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
        )
        await self.client_register_capability_async(lsp.RegistrationParams(registrations=[registration]))

    # -- checking ----------------------------------------------------------------------------
    async def buffer_changed(self, uri: str, typing: bool = False) -> None:
        """An open document's text changed (opened, edited, saved): diagnose it."""
        if self.path_of(uri) is not None:
            self._dirty.add(uri)
            await self.documents_changed([uri], typing=typing)

    async def documents_changed(self, uris: Iterable[str], typing: bool = False) -> None:
        """Diagnose these documents (and the open ones their change concerns); in pull mode, ask the
        client to pull again (except while typing: a client pulls after its own edits)."""
        if self.pull:
            if not typing:
                await self.sync_buffers(refresh=True)
            return
        self._to_publish |= set(uris)
        if self._round is None:
            self._round = asyncio.create_task(self._publish_round())

    async def _publish_round(self) -> None:
        """Check at once, not after a quiet time; the changes that come while a check runs (a burst
        of typing) wait for it and are checked together, with the latest text, in the next round."""
        try:
            async with self._lock:
                self._round = None  # from here on a change starts the next round
                affected = await self._sync()
                uris, self._to_publish = self._to_publish | affected, set()
                for uri in sorted(uris):
                    await self.publish(uri)
        except Exception:  # noqa: BLE001 - an engine error must not stop the server
            self.log_exception("checking")

    async def sync_buffers(self, refresh: bool = False) -> set[str]:
        async with self._lock:
            affected = await self._sync()
        if refresh and affected:
            self.refresh_pulled()
        return affected

    async def _sync(self) -> set[str]:
        """Hand the changed buffers to the project index; returns the open documents concerned."""
        await self._ready.wait()
        live = self.live
        assert live is not None
        changes = []
        for uri in sorted(self._dirty):
            buffer, path = self.buffer(uri), self.path_of(uri)
            if buffer is not None and path is not None:
                changes.append((path, buffer[0]))
                self._synced[uri] = buffer[1]
        self._dirty.clear()
        affected = await self.on_worker(self._apply_changes, live, changes)
        return self.open_uris(affected)

    def _apply_changes(self, live: LiveProject, changes: list[tuple[Path, str]]) -> set[Path]:
        affected: set[Path] = set()
        for path, source in changes:
            if self._is_linted(live, path):
                affected |= live.update(path, source)
        return affected

    def _is_linted(self, live: LiveProject, path: Path) -> bool:
        """Whether the workspace's exclusions leave this file to the linter (as named on a command line)."""
        if path not in self._excluded:
            named = replace(live.settings, force_exclude=True)
            self._excluded[path] = not any(discover_files([path], named))
        return not self._excluded[path]

    def diagnose(self, uri: str) -> Report:
        """Check one open document as the project index has it (on the worker thread)."""
        live, path = self.live, self.path_of(uri)
        report = Report(self._synced.get(uri))
        if live is None or path is None:
            return report
        diagnostics, report.failures = live.check(path, self.rules)
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is not None:
            in_cells(diagnostics, self.joined(notebook))
        codec = self.workspace.position_codec
        sources: dict[tuple[Path, int | None], tuple[str, list[str]]] = {}

        def where(of: Path, cell: int | None) -> tuple[str, list[str]]:
            """The URI and the lines of a file, or of a cell of the open notebook."""
            if (of, cell) not in sources:
                if cell is not None and of == path and notebook is not None:
                    cell_uri = notebook.cells[cell - 1].document
                    sources[of, cell] = cell_uri, lines_of(self.workspace.get_text_document(cell_uri).source)
                else:
                    sources[of, cell] = from_fs_path(str(of)) or of.as_uri(), lines_of(live.source(of) or "")
            return sources[of, cell]

        capabilities = self.client_capabilities.text_document
        published = capabilities.publish_diagnostics if capabilities else None
        with_related = bool(published and published.related_information) or self.pull
        for diagnostic in diagnostics:
            report.items.append((diagnostic, self.to_lsp(diagnostic, codec, where, with_related)))
        return report

    def to_lsp(
        self,
        diagnostic: Diagnostic,
        codec: PositionCodec,
        where: Callable[[Path, int | None], tuple[str, list[str]]],
        with_related: bool,
    ) -> lsp.Diagnostic:
        message = diagnostic.message
        related = []
        for note in diagnostic.related:
            if with_related:
                note_uri, note_lines = where(note.path, note.cell)
                location = lsp.Location(note_uri, client_range(codec, note_lines, note.start, note.end))
                related.append(lsp.DiagnosticRelatedInformation(location=location, message=note.message))
            else:
                message += f"\nnote: {note.path.name}:{note.start.row}:{note.start.column}: {note.message}"
        return lsp.Diagnostic(
            range=client_range(codec, where(diagnostic.path, diagnostic.cell)[1], diagnostic.start, diagnostic.end),
            message=message,
            severity=SEVERITIES.get(diagnostic.severity, lsp.DiagnosticSeverity.Error),
            code=diagnostic.code,
            code_description=lsp.CodeDescription(href=diagnostic.url) if diagnostic.url else None,
            source=SOURCE,
            related_information=related or None,
        )

    async def check(self, uri: str) -> Report:
        report = await self.on_worker(self.diagnose, uri)
        previous = self.reports.get(uri)
        already_logged = {(f.code, f.message) for f in previous.failures} if previous else set()
        for failure in report.failures:
            if (failure.code, failure.message) not in already_logged:
                self.log(
                    f"rule {failure.code} failed on {failure.path}: {failure.message} (the other rules' "
                    "diagnostics are shown)",
                    lsp.MessageType.Error,
                )
        self.reports[uri] = report
        return report

    async def publish(self, uri: str) -> None:
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if uri not in self.workspace.text_documents and notebook is None:
            return
        report = await self.check(uri)
        if notebook is None:
            self.publish_items(uri, [item for _, item in report.items], report.version)
            return
        for number, cell in enumerate(notebook.cells, start=1):
            if cell.kind == lsp.NotebookCellKind.Code:
                version = self.workspace.get_text_document(cell.document).version
                self.publish_items(cell.document, cell_items(report, number), version)

    def publish_items(self, uri: str, items: list[lsp.Diagnostic], version: int | None = None) -> None:
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=items, version=version)
        )

    def refresh_pulled(self) -> None:
        workspace = self.client_capabilities.workspace
        diagnostics = workspace.diagnostics if workspace else None
        if diagnostics is not None and diagnostics.refresh_support:
            self.workspace_diagnostic_refresh(None)

    async def pulled(self, uri: str) -> lsp.RelatedFullDocumentDiagnosticReport:
        """Diagnostics a client asks for: of a document, or of one cell of an open notebook."""
        notebook = self.workspace.get_notebook_document(cell_uri=uri)
        checked = notebook.uri if notebook is not None else uri
        try:
            others = await self.sync_buffers() - {checked}
            async with self._lock:
                report = await self.check(checked)
            if others:
                self.refresh_pulled()
            if notebook is None:
                items = [item for _, item in report.items]
            else:
                number = next(n for n, cell in enumerate(notebook.cells, start=1) if cell.document == uri)
                items = cell_items(report, number)
        except Exception:  # noqa: BLE001 - an engine error must not stop the server
            self.log_exception("checking")
            items = []
        return lsp.RelatedFullDocumentDiagnosticReport(items=items)

    async def file_changed_on_disk(self, path: Path, deleted: bool) -> None:
        """A file changed outside the editor (a checkout, a generated file): its disk text counts
        unless it is open, where the buffer counts."""
        if self.live is None or self.open_uris([path]):
            return
        affected = await self.on_worker(self._reread, self.live, path, deleted)
        await self.documents_changed(self.open_uris(affected))

    async def document_closed(self, uri: str, path: Path | None, shown_in: list[str]) -> None:
        """A document or notebook was closed: its diagnostics (shown in ``shown_in``, its cells for
        a notebook) are cleared, and its file on disk is the module again."""
        self._dirty.discard(uri)
        self.reports.pop(uri, None)
        if path is None:
            return
        if not self.pull:
            for shown in shown_in:
                self.publish_items(shown, [])
        await self.file_changed_on_disk(path, deleted=False)

    def _reread(self, live: LiveProject, path: Path, deleted: bool) -> set[Path]:
        if not deleted and path.is_file() and self._is_linted(live, path):
            try:
                return live.update(path, read_module(path)[0])
            except SourceError:
                pass
        return live.remove(path)

    # -- requests ----------------------------------------------------------------------------
    def hover(self, uri: str, position: lsp.Position) -> lsp.Hover | None:
        report = self.reports.get(uri)
        if report is None:
            return None
        where = (position.line, position.character)
        parts, ranges = [], []
        for diagnostic, item in report.items:
            start, end = item.range.start, item.range.end
            rule = rule_by_code(diagnostic.code)
            if rule is not None and (start.line, start.character) <= where <= (end.line, end.character):
                if hover_text(rule) not in parts:
                    parts.append(hover_text(rule))
                ranges.append(item.range)
        if not parts:
            return None
        return lsp.Hover(
            contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
            range=ranges[0] if len(ranges) == 1 else None,
        )

    def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        uri = params.text_document.uri
        document = self.workspace.text_documents.get(uri)
        report = self.reports.get(uri)
        if document is None:
            return []
        current = report is not None and report.version == document.version and uri not in self._dirty
        reported = {(d.code, _key(item.range)): d for d, item in report.items} if report and current else {}
        asked = [d for d in params.context.diagnostics if d.source == SOURCE]
        if not asked and report is not None:
            # clients that send no context get the diagnostics under the cursor
            asked = [item for _, item in report.items if _overlaps(item.range, params.range)]
        actions = []
        for diagnostic in asked:
            target = ActionTarget(uri, document, diagnostic, reported.get((diagnostic.code, _key(diagnostic.range))))
            for provider in CODE_ACTIONS:
                action = provider(target)
                if action is not None:
                    actions.append(action)
        return actions


def cell_items(report: Report, number: int) -> list[lsp.Diagnostic]:
    """A notebook's diagnostics in its cell ``number`` (1-based, every cell counted)."""
    return [item for diagnostic, item in report.items if diagnostic.cell == number]


def _key(span: lsp.Range) -> tuple[int, int, int, int]:
    return (span.start.line, span.start.character, span.end.line, span.end.character)


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and (b.start.line, b.start.character) <= (
        a.end.line,
        a.end.character,
    )


def create_server() -> MllintServer:
    server = MllintServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: MllintServer, params: lsp.InitializeParams) -> None:
        folders = params.workspace_folders or []
        root_uri = folders[0].uri if folders else params.root_uri
        root = to_fs_path(root_uri) if root_uri else params.root_path
        if root:
            ls.root = Path(root).resolve()
        ls.options = ClientOptions.parse(params.initialization_options)
        text_document = params.capabilities.text_document
        ls.pull = text_document is not None and text_document.diagnostic is not None

    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: MllintServer, _params: lsp.InitializedParams) -> None:
        await ls.read_client_settings()
        await ls.reconfigure()
        try:
            await ls.watch_files()
        except Exception:  # noqa: BLE001 - without file watching, saved buffers still count
            ls.log_exception("registering file watchers")

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: MllintServer, _params: None) -> None:
        ls.shut_down = True
        if ls._round is not None:
            ls._round.cancel()
        ls._worker.shutdown(wait=False, cancel_futures=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: MllintServer, params: lsp.DidOpenTextDocumentParams) -> None:
        await ls.buffer_changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: MllintServer, params: lsp.DidChangeTextDocumentParams) -> None:
        await ls.buffer_changed(params.text_document.uri, typing=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: MllintServer, params: lsp.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.endswith(f"/{CONFIG_FILE}"):
            await ls.reconfigure()
        else:
            await ls.buffer_changed(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: MllintServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        await ls.document_closed(uri, ls.path_of(uri), [uri])

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    async def notebook_opened(ls: MllintServer, params: lsp.DidOpenNotebookDocumentParams) -> None:
        await ls.buffer_changed(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    async def notebook_changed(ls: MllintServer, params: lsp.DidChangeNotebookDocumentParams) -> None:
        await ls.buffer_changed(params.notebook_document.uri, typing=True)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    async def notebook_saved(ls: MllintServer, params: lsp.DidSaveNotebookDocumentParams) -> None:
        await ls.buffer_changed(params.notebook_document.uri)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    async def notebook_closed(ls: MllintServer, params: lsp.DidCloseNotebookDocumentParams) -> None:
        uri = params.notebook_document.uri
        fs_path = to_fs_path(uri)
        cells = [cell.uri for cell in params.cell_text_documents]
        await ls.document_closed(uri, Path(fs_path) if fs_path is not None else None, cells)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched_files(ls: MllintServer, params: lsp.DidChangeWatchedFilesParams) -> None:
        paths = [(Path(to_fs_path(change.uri) or ""), change.type) for change in params.changes]
        if any(path.name == CONFIG_FILE for path, _ in paths):
            await ls.reconfigure()
            return
        for path, kind in paths:
            if path.suffix == ".py":
                await ls.file_changed_on_disk(path, deleted=kind == lsp.FileChangeType.Deleted)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration_changed(ls: MllintServer, params: lsp.DidChangeConfigurationParams) -> None:
        settings = params.settings
        if isinstance(settings, dict) and isinstance(settings.get(SOURCE), dict):
            ls.options = ClientOptions.parse(settings[SOURCE])
        else:
            await ls.read_client_settings()
        await ls.reconfigure()

    @server.feature(
        lsp.TEXT_DOCUMENT_DIAGNOSTIC,
        lsp.DiagnosticOptions(identifier=SOURCE, inter_file_dependencies=True, workspace_diagnostics=False),
    )
    async def diagnostic(ls: MllintServer, params: lsp.DocumentDiagnosticParams) -> lsp.DocumentDiagnosticReport:
        return await ls.pulled(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: MllintServer, params: lsp.HoverParams) -> lsp.Hover | None:
        return ls.hover(params.text_document.uri, params.position)

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix])
    )
    def code_action(ls: MllintServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return ls.code_actions(params)

    return server


def serve() -> int:
    """Serve over stdin/stdout until the client exits; 0 after a shutdown request, 1 without one."""
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol stream
    server = create_server()
    server.start_io(sys.stdin.buffer, protocol_out)
    return 0 if server.shut_down else 1
