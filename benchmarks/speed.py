"""mllint's speed on real code, beside the tools and floors it is measured against.

    python benchmarks/speed.py                      # the default wheels, into ./.bench-corpus
    python benchmarks/speed.py --packages transformers==5.23.0 --jobs 2

Downloads the pinned wheels with pip (no dependencies), unpacks their Python sources, and prints
for each: the bare libcst parse of every file (the floor, same number of processes), mllint cold
(no cache), warm (cache, nothing changed), one file changed, ruff and TorchFix (where installed),
and mllint's peak memory, with the ratios.
It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

DEFAULT_PACKAGES = (
    "transformers==5.23.0",
    "timm==1.0.31",
    "lightning==2.6.6",
    "torchvision==0.29.2",
    "scikit-learn==1.9.1",
)


def unpack(package: str, corpus: Path) -> Path:
    name = package.split("==")[0]
    target = corpus / name
    if target.is_dir():
        return target
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", folder, package],
            check=True,
        )
        [wheel] = Path(folder).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith(".py"):
                    archive.extract(member, target)
    return target


def _parse_file(path: Path) -> None:
    import libcst

    # the floor counts the attempt, failures included
    with contextlib.suppress(Exception):
        libcst.parse_module(path.read_text(encoding="utf-8", errors="replace"))


def parse_floor(files: list[Path], jobs: int) -> float:
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        pool.map(_parse_file, files, chunksize=16)
    return time.perf_counter() - started


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def peak_memory_mb(command: list[str]) -> float | None:
    """Peak memory of the command's processes together (the parent and its workers), sampled
    from /proc every 50 ms; None where there is no /proc. Each process counts its proportional
    set size: a page a forked worker shares with its parent counts once, split between them."""
    if not Path("/proc/self/smaps_rollup").exists():
        return None
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, sum(_proportional_kb(pid) for pid in _process_tree(process.pid)))
        time.sleep(0.05)
    return peak / 1024


def _process_tree(root: int) -> set[int]:
    """A process and its descendants."""
    parent_of: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):  # a process that ended meanwhile
            # the parent's pid follows the command name, which may hold spaces and parentheses
            parent_of[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        children = {pid for pid, parent in parent_of.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return tree


def _proportional_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def touched(path: Path, command: list[str]) -> float:
    """The time of ``command`` after a change to ``path`` (undone afterwards)."""
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# touched\n")
        return timed(command)
    finally:
        path.write_bytes(original)


def _tails(name: str) -> list[str]:
    """``a.b.c`` -> ``a.b.c``, ``b.c``, ``c``."""
    parts = name.split(".")
    return [".".join(parts[index:]) for index in range(len(parts))]


def largest_leaf(source: Path, files: list[Path]) -> Path:
    """The largest file whose module no other file imports."""
    from mllint.runner import module_name_for
    from mllint.semantic.imports import imported_names

    names = {path: module_name_for(path, source) for path in files}
    imported: set[str] = set()
    for path, (name, is_package) in names.items():
        imported |= imported_names(path.read_text(encoding="utf-8", errors="replace"), name, is_package)
    # imports are matched to modules by dotted suffix, either way round
    known = {tail for name in imported for tail in _tails(name)}
    leaves = [path for path, (name, _) in names.items() if name not in known and not imported & set(_tails(name))]
    return max(leaves or files, key=lambda path: path.stat().st_size)


def installed(tool: str) -> str | None:
    """A tool on the PATH or beside this interpreter (a virtual environment not activated)."""
    return shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))


def measure(source: Path, jobs: int, report: Callable[[str], None], torchfix_path: str | None = None) -> None:
    files = sorted(source.rglob("*.py"))
    lines = sum(len(path.read_bytes().splitlines()) for path in files)
    # a cache of its own: the default one sits at the root of whatever project encloses the corpus
    cache = Path(tempfile.mkdtemp(prefix="mllint-speed-cache-"))
    mllint = [sys.executable, "-m", "mllint", "check", "--exit-zero", "-q", "--jobs", str(jobs)]
    mllint += ["--no-respect-gitignore", "--cache-dir", str(cache), str(source)]

    floor = parse_floor(files, jobs)
    cold = timed([*mllint, "--no-cache"])
    first = timed(mllint)  # fills the cache
    warm = timed(mllint)
    # the worst case (the largest file, which much of the tree may import) and an everyday one (the
    # largest file that no other file imports: only it is re-checked)
    core, leaf = max(files, key=lambda path: path.stat().st_size), largest_leaf(source, files)
    one_changed = {path: touched(path, mllint) for path in dict.fromkeys([core, leaf])}
    ruff = installed("ruff")
    ruff_command = [ruff, "check", "--no-cache", "--select", "ALL", "--exit-zero", "-q", str(source)]
    ruff_time = timed(ruff_command) if ruff else None
    torchfix = torchfix_path or installed("torchfix")
    torchfix_time = timed([torchfix, "--jobs", str(jobs), str(source)]) if torchfix else None
    memory = peak_memory_mb([*mllint, "--no-cache"])
    shutil.rmtree(cache, ignore_errors=True)

    report(f"== {source.name}: {len(files)} files, {lines:,} lines, {jobs} processes")
    report(f"   libcst parse floor   {floor:8.1f} s")
    report(f"   mllint cold          {cold:8.1f} s   {cold / floor:5.2f}x floor   {1e6 * cold / lines:6.1f} us/line")
    report(f"   mllint cache fill    {first:8.1f} s")
    report(f"   mllint warm          {warm:8.1f} s")
    for path, seconds in one_changed.items():
        report(f"   mllint one changed   {seconds:8.1f} s   ({path.relative_to(source)})")
    if ruff_time is not None:
        report(f"   ruff --select ALL    {ruff_time:8.1f} s   mllint cold / ruff = {cold / ruff_time:.1f}x")
    if torchfix_time is not None:
        report(f"   torchfix             {torchfix_time:8.1f} s   torchfix / mllint cold = {torchfix_time / cold:.1f}x")
    if memory is not None:
        report(f"   mllint peak memory   {memory:8.0f} MB   (all its processes, proportional set size)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES))
    parser.add_argument("--corpus", type=Path, default=Path(".bench-corpus"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--torchfix", help="TorchFix's command, when it is not on the PATH (pip install torchfix)")
    args = parser.parse_args()
    args.corpus.mkdir(parents=True, exist_ok=True)
    for package in args.packages:
        measure(unpack(package, args.corpus), args.jobs, print, args.torchfix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
