"""The project index: modules, classes, functions and the call graph across files.

Built from every module of a run before any rule checks one, and updated a module at a time
(the language server replaces the module of an edited buffer). Anything outside the project is
known by its qualified name only.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from itertools import takewhile
from pathlib import Path
from typing import TypeVar

import libcst as cst
import networkx as nx

from mllint.context import ModuleContext
from mllint.semantic import knowledge
from mllint.semantic.imports import add_import_edges, dependency_fingerprints, import_graph
from mllint.semantic.names import called_name
from mllint.semantic.scan import Binding, ScopeTable
from mllint.semantic.summary import MODULE_CODE, ClassSummary, ModuleSummary, definition_spans, summarize
from mllint.semantic.values import ValueInference


@dataclass
class FunctionInfo:
    qualname: str
    node: cst.FunctionDef = field(repr=False)
    ctx: ModuleContext = field(repr=False)
    class_qualname: str | None = None

    @property
    def params(self) -> list[cst.Param]:
        params = self.node.params
        return [*params.posonly_params, *params.params, *params.kwonly_params]


@dataclass
class ClassInfo:
    qualname: str
    node: cst.ClassDef = field(repr=False)
    ctx: ModuleContext = field(repr=False)
    bases: list[str] = field(default_factory=list)
    methods: dict[str, FunctionInfo] = field(default_factory=dict, repr=False)

    def method_scopes(self) -> Iterator[ScopeTable]:
        """The scope tables of the methods defined in the class body."""
        for method in self.methods.values():
            table = self.ctx.scopes.get(method.node)
            if table is not None:
                yield table

    def self_bindings(self, attribute: str) -> list[Binding]:
        """What the class's methods bind to ``self.<attribute>``."""
        return [binding for table in self.method_scopes() for binding in table.self_attributes.get(attribute, ())]


Found = TypeVar("Found")

#: modules besides its own that may call a function, past which its call sites are not looked for
MAX_CALLER_MODULES = 8
#: names after ``def`` / ``class``: a superset of the names a module defines (strings and comments
#: count too), found without anchoring at line starts, which costs twice as much; two patterns
#: that each start with a literal are searched four times faster than one with an alternation
_DEFINITIONS = (re.compile(r"def[ \t]+(\w+)"), re.compile(r"class[ \t]+(\w+)"))
#: ``self.<name>`` not followed by ``.``, ``(`` or ``[``: a superset of the attributes methods
#: assign (a target ``self.x`` is followed by ``=``, ``:``, ``,``, ``)``, ``in``, an operator...)
_SELF_ATTRIBUTE = re.compile(r"self[\s\\]*\.[\s\\]*(\w+)\b(?![ \t]*[.(\[])")


@dataclass
class TextualNames:
    """Names read from the project's text with patterns, without parsing: cheap filters that
    spare a query the parse of the modules it would otherwise look through."""

    defined: set[str] = field(default_factory=set)
    self_attributes: set[str] = field(default_factory=set)

    def add(self, source: str) -> None:
        for pattern in _DEFINITIONS:
            self.defined.update(pattern.findall(source))
        self.self_attributes.update(_SELF_ATTRIBUTE.findall(source))


class ProjectIndex:
    """Modules are registered cheaply (path and text) and parsed only when a query needs them.

    A run registers every file, then checks each one; the classes, functions and call sites
    of other modules are loaded on demand, so a worker process parses what its files use, and of
    a module it does not check, the definitions a question needs (see :meth:`_part`).
    """

    def __init__(self, loader: Callable[[Path, str, str], ModuleContext] | None = None) -> None:
        self.modules: dict[str, ModuleContext] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.functions: dict[str, FunctionInfo] = {}
        self._sources: dict[str, tuple[Path, str]] = {}
        self._by_last_part: dict[str, list[str]] = {}
        self._failed: set[str] = set()
        self._loader = loader
        self._function_by_node: dict[cst.FunctionDef, FunctionInfo] = {}
        self._call_graph: nx.MultiDiGraph | None = None
        self._lookups: dict[tuple[str, str, str], FunctionInfo | ClassInfo | None] = {}
        #: summaries depend on a module's own text only: kept when parsed modules are dropped
        self._summaries: dict[str, ModuleSummary | None] = {}
        self._class_summaries: dict[tuple[str, str], ClassSummary | None] = {}
        self._call_sites: dict[str, tuple[list[tuple[ModuleContext, cst.Call]], bool]] = {}
        self._names: TextualNames | None = None
        self._imports: nx.DiGraph | None = None
        self._recent: OrderedDict[str, None] = OrderedDict()
        #: modules not parsed in full but for some of their definitions: module -> the names of the
        #: definitions a parse holds -> that parse (see :meth:`_part`)
        self._parts: dict[str, dict[frozenset[str], ModuleContext]] = {}
        self._load_budget: int | None = None
        self.values = ValueInference(self)

    # -- building ----------------------------------------------------------------------------
    def register(self, module_name: str, path: Path, source: str) -> None:
        """Make a module known without parsing it."""
        if module_name in self._sources:
            self.remove(module_name)
        self._sources[module_name] = (path, source)
        self._by_last_part.setdefault(module_name.rsplit(".", 1)[-1], []).append(module_name)
        self._invalidate()

    def load(self, module_name: str, strict: bool = False) -> ModuleContext | None:
        """The parsed module, parsing it now if needed; None when it is unknown or does not parse
        (``strict`` re-raises the loader's error instead: the module's own check reports it)."""
        if module_name in self._recent:
            self._recent.move_to_end(module_name)
        ctx = self.modules.get(module_name)
        if ctx is not None or module_name not in self._sources or self._loader is None:
            return ctx
        if module_name in self._failed and not strict:
            return None
        if strict and self._parts.get(module_name):
            # the module is about to be checked: every answer about it must come from its own parse
            # (a fix is offered only where the activation is found in the checked tree itself)
            self._unload(module_name)
            self._invalidate_answers()
        if not strict and not self._spend_load():
            return None
        path, source = self._sources[module_name]
        try:
            ctx = self._loader(path, source, module_name)
        except Exception:
            self._failed.add(module_name)
            if strict:
                raise
            return None
        # what was answered before this load stays true: queries load the modules they need
        self._index(ctx)
        return ctx

    def _spend_load(self) -> bool:
        """Whether another module may be parsed for the current check (counting it if so)."""
        if self._load_budget is None:
            return True
        if self._load_budget <= 0:
            return False  # this check has parsed enough other modules: the rest stays unknown
        self._load_budget -= 1
        return True

    def _part(self, module_name: str, names: frozenset[str], summary: ModuleSummary) -> ModuleContext | None:
        """The module parsed with the classes and functions ``names`` and the statements of its
        body that compute something, every other line left blank (other definitions, imports,
        docstrings, comments): positions stay those of the file, and a question about one helper
        of a 5,000-line module parses a few hundred lines. Names resolve as in the whole module
        (its name table is the summary's, imports included); a definition left out is parsed the
        same way when a lookup asks for it. None when it cannot be done."""
        parts = self._parts.setdefault(module_name, {})
        part = parts.get(names)
        if part is not None:
            self._recent.move_to_end(module_name)
            return part
        path, source = self._sources[module_name]
        spans = self._definition_lines(module_name, summary)
        if spans is None or "\r" in source or self._loader is None or not self._spend_load():
            return None  # (line ends other than "\n" would shift the blanked lines)
        lines = source.split("\n")
        kept = [""] * len(lines)
        for name in (MODULE_CODE, *names):
            for first, last in spans.get(name, ()):
                kept[first - 1 : last] = lines[first - 1 : last]
        try:
            part = self._loader(path, "\n".join(kept), module_name)
        except Exception:  # noqa: BLE001 - the loader reports a broken module when it is checked
            return None
        part.names.bindings = dict(summary.bindings)
        part.names.definitions = set(summary.definitions)
        parts[names] = part
        self._recent[module_name] = None
        self._index_definitions(part)
        return part

    def _definition_lines(
        self, module_name: str, summary: ModuleSummary
    ) -> Mapping[str, tuple[tuple[int, int], ...]] | None:
        """The lines of the module's top-level definitions and of its other code (see
        :func:`definition_spans`): read with its summary, or now, once (the summary of a module
        parsed in full is told from its parse, which keeps no line numbers)."""
        summary = self._summaries.get(module_name) or summary
        if summary.spans is None:
            try:
                spans = definition_spans(ast.parse(self.source(module_name)))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return None
            summary = self._summaries[module_name] = replace(summary, spans=spans)
        return summary.spans

    def _holds(self, module_name: str, name: str) -> bool:
        """Whether a part of the module parsed so far holds the definition ``name``."""
        return any(name in names for names in self._parts.get(module_name, ()))

    @property
    def partly_parsed(self) -> dict[str, frozenset[str]]:
        """Modules parsed for some of their definitions only: module -> those definitions."""
        return {module_name: frozenset().union(*parts) for module_name, parts in self._parts.items() if parts}

    def limit_loads(self, budget: int | None) -> None:
        """At most ``budget`` other modules parsed for the next check (None: no limit). Bounds the
        cost of one file's cross-file questions in a large tree; what is not loaded stays unknown."""
        self._load_budget = budget

    def trim(self, most: int) -> None:
        """Keep memory bounded on big trees: past ``most`` parsed modules, drop modules down to
        three quarters of it, the least recently used first but libraries last: most checks ask
        about a module that many others import, and parsing it again for each is what a large tree
        would spend its time on. Dropped modules stay registered and are parsed again if a later
        query needs them."""
        loaded = len(self.modules.keys() | self._parts.keys())
        if loaded <= most:
            return
        # a stable sort: least recently used first within each group
        order = sorted(self._recent, key=self._is_library)
        for module_name in order[: loaded - most * 3 // 4]:
            self._unload(module_name)
        # the dropped trees are freed by reference counting (nothing that holds nodes may be a
        # reference cycle: the cyclic collector is off during runs)
        self._invalidate_answers()

    def _is_library(self, module_name: str) -> bool:
        return len(self._importers(module_name)) > MAX_CALLER_MODULES

    @property
    def import_graph(self) -> nx.DiGraph:
        """Module -> project module it imports, read from the sources without parsing them."""
        if self._imports is None:
            self._imports = import_graph(
                ((name, source, path.name == "__init__.py") for name, (path, source) in self._sources.items()),
                self._resolve_import,
            )
        return self._imports

    def _resolve_import(self, dotted: str, near: str) -> str | None:
        return self._module_named(dotted, near) or (
            self._module_named(dotted.rsplit(".", 1)[0], near) if "." in dotted else None
        )

    def dependents(self, module_name: str) -> set[str]:
        """The modules whose findings may change when this one's text changes: itself, the modules
        that import it (transitively) and those it imports directly that are not libraries (it
        binds their parameters), the dependence that
        :func:`mllint.semantic.imports.dependency_fingerprints` hashes."""
        graph = self.import_graph
        if module_name not in graph:
            return {module_name}
        imported = [m for m in graph.successors(module_name) if len(self._importers(m)) <= MAX_CALLER_MODULES]
        return {module_name, *nx.ancestors(graph, module_name), *imported}

    def _importers(self, module_name: str) -> list[str]:
        graph = self.import_graph
        return [m for m in graph.predecessors(module_name) if m != module_name] if module_name in graph else []

    def fingerprints(self) -> dict[str, str]:
        """Per registered module, a hash that changes when anything its findings may depend on
        changes (see :mod:`mllint.semantic.imports`)."""
        hashes = {name: hashlib.sha256(source.encode()).hexdigest() for name, (_, source) in self._sources.items()}
        return dependency_fingerprints(self.import_graph, hashes, MAX_CALLER_MODULES)

    def source(self, module_name: str) -> str:
        return self._sources[module_name][1]

    def is_registered(self, module_name: str) -> bool:
        return module_name in self._sources

    def replace_source(self, module_name: str, source: str) -> None:
        """New text for a registered module (an edited buffer). Its parse and the answers derived
        from the project are dropped; the import graph and the definition filter are patched for
        this module alone, where a new registration would rebuild them from every source."""
        path, _ = self._sources[module_name]
        self._unload(module_name)
        self._failed.discard(module_name)
        self._summaries.pop(module_name, None)
        self._sources[module_name] = (path, source)
        if self._names is not None:
            # names of the old text stay: a superset is still a correct filter
            self._names.add(source)
        if self._imports is not None:
            # other modules' edges resolve against module names only, which did not change
            self._imports.remove_edges_from(list(self._imports.out_edges(module_name)))
            add_import_edges(self._imports, module_name, source, path.name == "__init__.py", self._resolve_import)
        self._invalidate_answers()

    def add(self, ctx: ModuleContext) -> None:
        """Index a parsed module, replacing an earlier version of it (an edited buffer)."""
        self._unload(ctx.module_name)
        self._index(ctx)
        self._invalidate()

    def _index(self, ctx: ModuleContext) -> None:
        self._recent[ctx.module_name] = None
        if ctx.module_name not in self._sources:
            self._sources[ctx.module_name] = (ctx.path, ctx.source)
            self._by_last_part.setdefault(ctx.module_name.rsplit(".", 1)[-1], []).append(ctx.module_name)
        self.modules[ctx.module_name] = ctx
        self._index_definitions(ctx)

    def _index_definitions(self, ctx: ModuleContext) -> None:
        ctx.project = self
        for function in ctx.functions:
            self._add_function(ctx, function)
        for class_node in ctx.classes:
            self._add_class(ctx, class_node)

    def remove(self, module_name: str) -> None:
        self._unload(module_name)
        if self._sources.pop(module_name, None) is not None:
            self._by_last_part[module_name.rsplit(".", 1)[-1]].remove(module_name)
        self._failed.discard(module_name)
        self._invalidate()

    def _unload(self, module_name: str) -> None:
        ctx = self.modules.pop(module_name, None)
        self._recent.pop(module_name, None)
        for part in self._parts.pop(module_name, {}).values():
            self._drop_definitions(part)
        if ctx is not None:
            self._drop_definitions(ctx)

    def _drop_definitions(self, ctx: ModuleContext) -> None:
        ctx.release()
        # the module's own entries, found from its nodes: scanning the whole tables for each
        # dropped module would make trimming a large tree quadratic
        for node in ctx.functions:
            function = self._function_by_node.pop(node, None)
            if function is not None and self.functions.get(function.qualname) is function:
                del self.functions[function.qualname]
        for node in ctx.classes:
            qualname = self.qualify(ctx, node)
            if qualname in self.classes and self.classes[qualname].ctx is ctx:
                del self.classes[qualname]

    def _invalidate(self) -> None:
        """The project changed: every derived answer is stale."""
        self._names = None
        self._imports = None
        self._summaries.clear()
        self._invalidate_answers()

    def _invalidate_answers(self) -> None:
        """Answers that hold parsed nodes (dropped modules must not stay reachable through them)."""
        if self._call_graph is not None:
            self._call_graph.clear()  # its edges hold parsed calls (see ModuleContext.release)
        self._call_graph = None
        self._lookups.clear()
        self._class_summaries.clear()
        self._call_sites.clear()
        self.values.clear()
        for ctx in self.modules.values():
            ctx.memo.clear()

    def _owner_names(self, ctx: ModuleContext, node: cst.CSTNode) -> list[str]:
        owners = [
            ancestor.name.value
            for ancestor in ctx.ancestors(node)
            if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef))
        ]
        return list(reversed(owners))

    def qualify(self, ctx: ModuleContext, node: cst.FunctionDef | cst.ClassDef) -> str:
        parts = [ctx.module_name, *self._owner_names(ctx, node), node.name.value]
        return ".".join(part for part in parts if part)

    def _add_function(self, ctx: ModuleContext, node: cst.FunctionDef) -> None:
        owner = ctx.parent(ctx.parent(node) or node)
        class_qualname = self.qualify(ctx, owner) if isinstance(owner, cst.ClassDef) else None
        info = FunctionInfo(self.qualify(ctx, node), node, ctx, class_qualname)
        self.functions[info.qualname] = info
        self._function_by_node[node] = info

    def _add_class(self, ctx: ModuleContext, node: cst.ClassDef) -> None:
        info = ClassInfo(self.qualify(ctx, node), node, ctx)
        for base in node.bases:
            qualname = ctx.qualname(base.value)
            if qualname is not None:
                info.bases.append(knowledge.normalize(qualname))
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                info.methods[statement.name.value] = self._function_by_node[statement]
        self.classes[info.qualname] = info

    # -- queries -----------------------------------------------------------------------------
    def function_info(self, node: cst.FunctionDef) -> FunctionInfo | None:
        return self._function_by_node.get(node)

    def resolve_class(self, qualname: str, near: str = "") -> ClassInfo | None:
        found = self._lookup(qualname, near, "class")
        return found if isinstance(found, ClassInfo) else None

    def resolve_function(self, qualname: str, near: str = "") -> FunctionInfo | None:
        found = self._lookup(qualname, near, "function")
        return found if isinstance(found, FunctionInfo) else None

    def _lookup(self, qualname: str, near: str, kind: str, depth: int = 0) -> FunctionInfo | ClassInfo | None:
        key = (qualname, near, kind)
        if key not in self._lookups:
            self._lookups[key] = None  # a cycle of re-exports resolves to nothing
            self._lookups[key] = self._find(qualname, near, kind, depth)
        return self._lookups[key]

    def _find(self, qualname: str, near: str, kind: str, depth: int) -> FunctionInfo | ClassInfo | None:
        table: dict[str, FunctionInfo] | dict[str, ClassInfo] = self.classes if kind == "class" else self.functions
        if qualname in table:
            return table[qualname]

        def in_module(
            module_name: str, name: str
        ) -> tuple[Mapping[str, FunctionInfo | ClassInfo], Mapping[str, str]] | None:
            if module_name not in self.modules:
                summary = self.module_summary(module_name)
                # the module defines no class or function of that name (a module-level value, a
                # re-export: its imports alone tell what the name is), or that definition alone is
                # parsed
                if summary is not None and (
                    name not in summary.definitions
                    or self._holds(module_name, name)
                    or self._part(module_name, frozenset({name}), summary) is not None
                ):
                    return table, summary.bindings
            ctx = self.load(module_name)
            return (table, ctx.names.bindings) if ctx is not None else None

        def follow(target: str, module_name: str) -> FunctionInfo | ClassInfo | None:
            return self._lookup(target, module_name, kind, depth + 1) if depth < 8 else None

        return self._locate(qualname, near, in_module, follow)

    def _locate(
        self,
        qualname: str,
        near: str,
        in_module: Callable[[str, str], tuple[Mapping[str, Found], Mapping[str, str]] | None],
        follow: Callable[[str, str], Found | None],
    ) -> Found | None:
        """What ``qualname`` names in the module its longest prefix names: an entry of the table
        ``in_module`` gives for that module and the first name looked up in it (keyed by qualified
        name), or what a name the module imports from elsewhere names (``from .modeling import Net``
        in ``__init__``), by ``follow``."""
        parts = qualname.split(".")
        for split in range(len(parts) - 1, 0, -1):
            module_name = self._module_named(".".join(parts[:split]), near)
            rest = parts[split:]
            found = in_module(module_name, rest[0]) if module_name else None
            if module_name is None or found is None:
                continue
            table, bindings = found
            entry = table.get(".".join([module_name, *rest]))
            if entry is not None:
                return entry
            target = bindings.get(rest[0])
            if target is None or target == qualname:
                return None
            return follow(".".join([target, *rest[1:]]), module_name)
        return None

    def class_summary(self, qualname: str, near: str = "") -> ClassSummary | None:
        """The bases, methods and assigned attributes of a project class (None for a class outside
        the project), without a libcst parse of a module that is not parsed yet."""
        return self._lookup_summary(qualname, near, 0)

    def _lookup_summary(self, qualname: str, near: str, depth: int) -> ClassSummary | None:
        key = (qualname, near)
        if key not in self._class_summaries:
            self._class_summaries[key] = None  # a cycle of re-exports resolves to nothing
            self._class_summaries[key] = self._find_summary(qualname, near, depth)
        return self._class_summaries[key]

    def _find_summary(self, qualname: str, near: str, depth: int) -> ClassSummary | None:
        def in_module(module_name: str, _name: str) -> tuple[Mapping[str, ClassSummary], Mapping[str, str]] | None:
            summary = self.module_summary(module_name)
            return (summary.classes, summary.bindings) if summary is not None else None

        def follow(target: str, module_name: str) -> ClassSummary | None:
            return self._lookup_summary(target, module_name, depth + 1) if depth < 8 else None

        return self._locate(qualname, near, in_module, follow)

    def module_summary(self, module_name: str) -> ModuleSummary | None:
        if module_name not in self._summaries:
            ctx = self.modules.get(module_name)
            if ctx is not None:
                self._summaries[module_name] = self._summary_of(ctx)
            else:
                path, source = self._sources[module_name]
                self._summaries[module_name] = summarize(source, module_name, path.name == "__init__.py")
        return self._summaries[module_name]

    def _summary_of(self, ctx: ModuleContext) -> ModuleSummary:
        """A parsed module's summary, from its tables: equal to what :func:`summarize` reads."""
        classes = {}
        for node in ctx.classes:
            info = self.classes[self.qualify(ctx, node)]
            attributes = {name for table in info.method_scopes() for name in table.self_attributes}
            classes[info.qualname] = ClassSummary(
                info.qualname, tuple(info.bases), frozenset(info.methods), frozenset(attributes), ctx.module_name
            )
        return ModuleSummary(ctx.names.bindings, classes, frozenset(ctx.names.definitions))

    def _module_named(self, dotted: str, near: str) -> str | None:
        """The registered module called ``dotted``, or ending in it, closest to ``near``."""
        if dotted in self._sources:
            return dotted
        suffix = "." + dotted
        candidates = [name for name in self._by_last_part.get(dotted.rsplit(".", 1)[-1], ()) if name.endswith(suffix)]
        if not candidates:
            return None
        near_parts = near.split(".")

        def shared(name: str) -> int:
            return sum(
                1 for _ in takewhile(lambda pair: pair[0] == pair[1], zip(name.split("."), near_parts, strict=False))
            )

        return max(candidates, key=shared)

    def mro(self, qualname: str) -> Iterator[str]:
        """The class and its ancestors (project classes followed, outside ones yielded by name)."""
        seen: set[str] = set()
        pending = [qualname]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen.add(current)
            yield current
            summary = self.class_summary(current)
            if summary is not None:
                pending.extend(summary.bases)

    def is_subclass(self, qualname: str, bases: set[str] | frozenset[str]) -> bool:
        return any(knowledge.normalize(ancestor) in bases for ancestor in self.mro(qualname))

    def is_model_class(self, qualname: str) -> bool:
        return self.is_subclass(qualname, knowledge.MODULE_BASES)

    def method(self, class_qualname: str, name: str) -> FunctionInfo | None:
        for info in self._ancestors_where(class_qualname, lambda summary: name in summary.methods):
            if name in info.methods:
                return info.methods[name]
        return None

    def classes_assigning(self, class_qualname: str, attribute: str) -> Iterator[ClassInfo]:
        """The class and its project ancestors whose methods may assign ``self.<attribute>``."""
        return self._ancestors_where(class_qualname, lambda summary: attribute in summary.attributes)

    def summaries_assigning(self, class_qualname: str, attribute: str) -> Iterator[tuple[str, ClassSummary]]:
        """The summaries of those classes, each with the name the walk reached it by; nothing
        parsed (see :meth:`classes_assigning`)."""
        return self._summaries_where(class_qualname, lambda summary: attribute in summary.attributes)

    def _ancestors_where(self, class_qualname: str, wanted: Callable[[ClassSummary], bool]) -> Iterator[ClassInfo]:
        """The class and its project ancestors, in method resolution order, whose summary is
        ``wanted``: only those are parsed with libcst."""
        for ancestor, _ in self._summaries_where(class_qualname, wanted):
            info = self.resolve_class(ancestor)
            if info is not None:
                yield info

    def _summaries_where(
        self, class_qualname: str, wanted: Callable[[ClassSummary], bool]
    ) -> Iterator[tuple[str, ClassSummary]]:
        for ancestor in self.mro(class_qualname):
            summary = self.class_summary(ancestor)
            if summary is not None and wanted(summary):
                yield ancestor, summary

    def prepare(self) -> None:
        """Build the tables every check consults (the import graph, the names read from the text)
        now: before worker processes are forked, so that they share them instead of each building
        its own."""
        self.import_graph  # noqa: B018 - built on first access
        self._textual_names()

    def _textual_names(self) -> TextualNames:
        if self._names is None:
            self._names = TextualNames()
            for _, source in self._sources.values():
                self._names.add(source)
        return self._names

    def defines(self, name: str) -> bool:
        """Whether any project module defines a function or class of this name (a cheap filter:
        ``x.view()`` cannot call project code when no project file defines ``view``)."""
        return name in self._textual_names().defined

    def may_assign_to_self(self, attribute: str) -> bool:
        """Whether any project method may assign ``self.<attribute>`` (a cheap filter: the value
        of ``x.<attribute>`` cannot be inferred when no class assigns it, whatever ``x`` holds)."""
        return attribute in self._textual_names().self_attributes

    def resolve_callee(self, ctx: ModuleContext, call: cst.Call) -> FunctionInfo | ClassInfo | None:
        """The project function or class a call invokes, when the index can tell."""
        func = call.func
        called = called_name(call)
        if called is None or not self.defines(called):
            return None
        qualname = ctx.qualname(func)
        if qualname is not None:
            near = ctx.module_name
            return self.resolve_function(qualname, near) or self.resolve_class(qualname, near)
        if isinstance(func, cst.Name):
            # a nested function defined in an enclosing scope
            for ancestor in ctx.ancestors(call):
                if isinstance(ancestor, cst.FunctionDef):
                    info = self._function_by_node.get(ancestor)
                    if info is not None and f"{info.qualname}.{func.value}" in self.functions:
                        return self.functions[f"{info.qualname}.{func.value}"]
            return None
        if isinstance(func, cst.Attribute):
            for class_qualname in self.values.infer(ctx, func.value):
                method = self.method(class_qualname, func.attr.value)
                if method is not None:
                    return method
        return None

    def constructed_class(self, ctx: ModuleContext, call: cst.Call) -> str | None:
        """The qualified name of the project class a call instantiates, told from summaries: an
        instance's class is all value inference needs, not the parsed module that defines it."""
        called = called_name(call)
        qualname = ctx.qualname(call.func) if called is not None and self.defines(called) else None
        summary = self.class_summary(qualname, ctx.module_name) if qualname is not None else None
        return summary.qualname if summary is not None else None

    def load_all(self) -> None:
        for module_name in list(self._sources):
            self.load(module_name)

    @property
    def call_graph(self) -> nx.MultiDiGraph:
        """Function qualname -> called project function, one edge per call with ``call``/``ctx``.

        Built over the whole project (every module is loaded): for whole-program questions;
        per-call questions use :meth:`resolve_callee` and :meth:`call_sites`, which stay lazy.
        """
        if self._call_graph is None:
            self.load_all()
            # published before it is filled: inference during the build sees the edges so far
            graph = self._call_graph = nx.MultiDiGraph()
            graph.add_nodes_from(self.functions)
            for ctx in self.modules.values():
                for call in ctx.calls:
                    callee = self.resolve_callee(ctx, call)
                    if not isinstance(callee, FunctionInfo):
                        continue
                    caller = self._function_by_node.get(ctx.enclosing_function(call))  # type: ignore[arg-type]
                    graph.add_edge(caller.qualname if caller else ctx.module_name, callee.qualname, call=call, ctx=ctx)
            self.values.clear()
        return self._call_graph

    def call_sites(self, function: FunctionInfo) -> list[tuple[ModuleContext, cst.Call]]:
        """Calls of a project function in its module and in the modules that import it; only those
        of its own module when more than ``MAX_CALLER_MODULES`` others import it (see
        :meth:`callers_known`)."""
        return self._sites(function)[0]

    def callers_known(self, function: FunctionInfo) -> bool:
        """Whether :meth:`call_sites` holds every call of the function in the project: false for
        library-style functions that many modules call, whose callers are not all parsed."""
        return self._sites(function)[1]

    def _sites(self, function: FunctionInfo) -> tuple[list[tuple[ModuleContext, cst.Call]], bool]:
        if function.qualname not in self._call_sites:
            name = function.node.name.value
            # a constructor is called through its class: ``Predictor(model)`` binds ``__init__``'s
            # parameters
            owner = self.classes.get(function.class_qualname or "") if name == "__init__" else None
            target: FunctionInfo | ClassInfo = owner if owner is not None else function
            if owner is not None:
                name = owner.node.name.value
            home = function.ctx.module_name
            # callers are the function's own module and the modules that import it
            importers = self._importers(home)
            # a module many others import is a library: parsing them all for one file's question
            # is what makes a large tree slow, so its functions' parameters are not followed past
            # it (and the cache need not re-check it when one of its importers changes)
            complete = len(importers) <= MAX_CALLER_MODULES
            candidates = [m for m in [home, *(importers if complete else ())] if self.may_call(m, name)]
            sites = []
            for module_name in candidates:
                ctx = self._calling(module_name, name)
                for call in self._calls_named(ctx, name) if ctx else ():
                    callee = self.resolve_callee(ctx, call)
                    # by name: a definition may be known from the parse of a part and of its module
                    if callee is not None and type(callee) is type(target) and callee.qualname == target.qualname:
                        sites.append((ctx, call))
            self._call_sites[function.qualname] = (sites, complete)
        return self._call_sites[function.qualname]

    def may_call(self, module_name: str, name: str) -> bool:
        """Whether a module may call something called ``name``: its text has ``name(`` (a superset:
        a mention in a comment, a string or an import is not a call)."""
        return _calls(name, self._sources[module_name][1])

    def _calling(self, module_name: str, name: str) -> ModuleContext | None:
        """The module parsed with every definition whose text may call ``name`` (its top-level
        statements, where calls may be too, are in every part), or in full."""
        summary = None if module_name in self.modules else self.module_summary(module_name)
        spans = self._definition_lines(module_name, summary) if summary is not None else None
        if summary is None or spans is None:
            return self.load(module_name)
        lines = self.source(module_name).split("\n")
        calling = frozenset(
            definition
            for definition, ranges in spans.items()
            if any(_calls(name, "\n".join(lines[first - 1 : last])) for first, last in ranges)
        ) - {MODULE_CODE}  # (in every part)
        return self._part(module_name, calling, summary) or self.load(module_name)

    def _calls_named(self, ctx: ModuleContext, name: str) -> list[cst.Call]:
        """The module's calls of a function or method called ``name`` (indexed once per parse:
        asking for the call sites of every function of a long module stays linear)."""
        key = ("calls by name",)
        table: dict[str, list[cst.Call]] | None = ctx.memo.get(key)  # type: ignore[assignment]
        if table is None:
            table = ctx.memo[key] = {}
            for call in ctx.calls:
                called = called_name(call)
                if called is not None:
                    table.setdefault(called, []).append(call)
        return table.get(name, [])

    def infer(self, ctx: ModuleContext, expr: cst.BaseExpression) -> frozenset[str]:
        """Qualified names of the classes (or factories) whose instances ``expr`` may hold."""
        return self.values.infer(ctx, expr)


def _calls(name: str, text: str) -> bool:
    """Whether ``text`` has ``name(`` (spaces allowed before the parenthesis) after a character
    that is not part of a name. Searched without a leading ``\\b``, which would keep the regular
    expression engine from looking for the name as a literal first (twenty times slower)."""
    for match in re.finditer(rf"{re.escape(name)}\s*\(", text):
        start = match.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            return True
    return False
