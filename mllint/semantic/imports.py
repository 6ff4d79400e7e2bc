"""The project's import graph, read from source text without parsing.

It answers "which modules can a module's findings depend on?" for the cache: a module's findings
depend on what it imports (transitively: a model's base class lives two files away) and on the
modules that import it (they bind its functions' parameters at their call sites), unless it is a
library that many modules import.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator

import networkx as nx

IMPORT_LINE = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<from>\.*[\w.]*)[ \t]+import[ \t]+(?:\((?P<paren>[^)]*)\)|(?P<names>[^#\n]+))"
    r"|import[ \t]+(?P<modules>[^#\n]+))",
    re.M,
)


def imported_names(source: str, module_name: str, is_package: bool) -> set[str]:
    """Dotted names a module imports: ``a.b`` for ``import a.b``, ``a.b`` and ``a.b.c`` for
    ``from a.b import c``; relative imports made absolute."""
    found: set[str] = set()
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    for match in _import_lines(source):
        if match.group("modules"):
            for part in match.group("modules").split(","):
                found.add(part.split(" as ")[0].strip(" ()\\"))
            continue
        base = match.group("from")
        level = len(base) - len(base.lstrip("."))
        base = base.lstrip(".")
        if level:
            prefix = package[: len(package) - (level - 1)] if level > 1 else package
            base = ".".join([*prefix, base] if base else prefix)
        found.add(base)
        names = match.group("paren") or match.group("names") or ""
        for name in names.replace("\\", " ").replace("\n", " ").split(","):
            name = name.split(" as ")[0].strip()
            if name and name != "*":
                found.add(f"{base}.{name}" if base else name)
    return {name for name in found if name}


def _import_lines(source: str) -> Iterator[re.Match[str]]:
    """``IMPORT_LINE`` matches, tried only at the starts of lines that contain "import": a
    regular-expression scan of every line start costs more than the rest of a warm run."""
    position = 0
    while (found := source.find("import", position)) != -1:
        match = IMPORT_LINE.match(source, source.rfind("\n", 0, found) + 1)
        if match is not None:
            yield match
        line_end = source.find("\n", match.end() if match is not None else found)
        position = len(source) if line_end == -1 else line_end + 1


Resolver = Callable[[str, str], str | None]


def import_graph(modules: Iterable[tuple[str, str, bool]], resolve: Resolver) -> nx.DiGraph:
    """Module -> project module it imports. ``resolve(dotted, near)`` names the project module."""
    graph = nx.DiGraph()
    for module_name, source, is_package in modules:
        add_import_edges(graph, module_name, source, is_package, resolve)
    return graph


def add_import_edges(graph: nx.DiGraph, module_name: str, source: str, is_package: bool, resolve: Resolver) -> None:
    """The module and an edge to each project module its text imports."""
    graph.add_node(module_name)
    for dotted in imported_names(source, module_name, is_package):
        target = resolve(dotted, module_name)
        if target is not None and target != module_name:
            graph.add_edge(module_name, target)


def dependency_fingerprints(graph: nx.DiGraph, content_hash: dict[str, str], max_importers: int) -> dict[str, str]:
    """For each module, a hash of its own text, of everything it imports transitively and of
    its direct importers' texts, unless more than ``max_importers`` import it (the project index
    then follows no calls into it): equal fingerprints mean equal findings."""
    condensed = nx.condensation(graph)
    closure: dict[int, str] = {}
    for component in reversed(list(nx.topological_sort(condensed))):
        digest = hashlib.sha256()
        for member in sorted(condensed.nodes[component]["members"]):
            digest.update(content_hash[member].encode())
        for successor in sorted(closure[s] for s in condensed.successors(component)):
            digest.update(successor.encode())
        closure[component] = digest.hexdigest()
    mapping = condensed.graph["mapping"]
    fingerprints = {}
    for module_name in graph.nodes:
        digest = hashlib.sha256(closure[mapping[module_name]].encode())
        importers = sorted(graph.predecessors(module_name))
        digest.update(str(len(importers)).encode())
        for importer in importers if len(importers) <= max_importers else ():
            digest.update(content_hash[importer].encode())
        fingerprints[module_name] = digest.hexdigest()
    return fingerprints
