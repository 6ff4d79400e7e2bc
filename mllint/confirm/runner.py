"""Running probes in child processes: one per model and check, isolated and bounded in time and
memory, so that no crash, hang, ``sys.exit`` or import error of the project's code reaches mllint."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mllint
from mllint.confirm.probe import ModelProbe
from mllint.diagnostics import Confirmation, Diagnostic

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_MB = 4096
#: the project's stderr lines kept in a reason
STDERR_TAIL = 1


@dataclass(frozen=True)
class ConfirmOptions:
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    #: model qualname -> ``module:function`` returning the model (and example inputs)
    factories: dict[str, str] = field(default_factory=dict)
    #: folders the project's modules are imported from, besides each model's own
    roots: tuple[Path, ...] = ()
    jobs: int = 1


@dataclass
class ProbeResult:
    confirmation: Confirmation
    #: the child's time for the model's work, and for importing torch (None: not measured)
    seconds: float | None = None
    torch_import_seconds: float | None = None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def confirm(
    diagnostics: Sequence[Diagnostic], confirmable_codes: Iterable[str], options: ConfirmOptions
) -> dict[ModelProbe, ProbeResult]:
    """Set every diagnostic's confirmation; equal probes run once. Returns the probes' results."""
    probes = sorted({d.probe for d in diagnostics if d.probe is not None}, key=lambda p: (p.path, p.qualname, p.check))
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        results = dict(zip(probes, pool.map(lambda probe: run_probe(probe, options), probes), strict=True))
    confirmable = set(confirmable_codes)
    for d in diagnostics:
        if d.probe is not None:
            d.confirmation = results[d.probe].confirmation
        elif d.code in confirmable:
            d.confirmation = Confirmation(
                "unconfirmed", "none", "the finding concerns no single model class of the project that can be run"
            )
        else:
            d.confirmation = Confirmation("unconfirmed", "none", f"no dynamic check decides {d.code}")
    return results


def run_probe(probe: ModelProbe, options: ConfirmOptions) -> ProbeResult:
    factory = options.factories.get(probe.qualname) or options.factories.get(f"{probe.module}.{probe.class_name}")
    request = {
        "probe": asdict(probe),
        "factory": factory,
        "roots": [probe.import_root, *map(str, options.roots)],
    }
    with tempfile.TemporaryDirectory(prefix="mllint-confirm-") as workdir:
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "mllint.confirm.child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=_environment(workdir),
                preexec_fn=lambda: _limit_memory(options.memory_mb),
                start_new_session=True,
            )
        except OSError as error:
            return ProbeResult(Confirmation("unconfirmed", "none", f"cannot start a child process: {error}"))
        try:
            out, err = process.communicate(json.dumps(request).encode(), timeout=options.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            reason = f"timed out after {options.timeout:g} s (the project's code hangs or is too slow)"
            return ProbeResult(Confirmation("unconfirmed", "none", reason))
    return _result(process.returncode, out, err)


def _result(returncode: int, out: bytes, err: bytes) -> ProbeResult:
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        answer = {}
    if {"status", "method", "evidence"} <= answer.keys():
        confirmation = Confirmation(answer["status"], answer["method"], answer["evidence"])
        return ProbeResult(confirmation, answer.get("seconds"), answer.get("torch_import_seconds"))
    if returncode < 0:
        reason = f"the child process was killed by {signal.Signals(-returncode).name}"
    else:
        reason = f"the child process exited with code {returncode} before answering"
    tail = [line for line in err.decode(errors="replace").splitlines() if line.strip()][-STDERR_TAIL:]
    if tail:
        reason += f" ({tail[0].strip()})"
    return ProbeResult(Confirmation("unconfirmed", "none", reason))


def _environment(workdir: str) -> dict[str, str]:
    """The parent's environment, with no GPU, a private home and temporary folder, offline model
    hubs, one thread per library, and mllint importable (the project's folders are added later)."""
    package_parent = str(Path(mllint.__file__).resolve().parent.parent)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env.update(
        CUDA_VISIBLE_DEVICES="",
        HIP_VISIBLE_DEVICES="",
        HOME=workdir,
        TMPDIR=workdir,
        PYTHONPATH=package_parent,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        PYTHONWARNINGS="ignore",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _kill(process: subprocess.Popen[bytes]) -> None:
    """The child and anything it started (its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
