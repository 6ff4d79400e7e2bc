"""The child process that runs one probe: ``python -m mllint.confirm.child`` with a JSON request on
stdin, one JSON answer on the file descriptor that was stdout (the project's own prints go to
stderr). Started by :mod:`mllint.confirm.runner` with a timeout, a memory limit, no CUDA device
and an empty working directory."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from mllint.confirm import describe_error


def main() -> None:
    answer_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(sys.stdin.read())
    answer = run(request)
    answer_stream.write(json.dumps(answer))
    answer_stream.flush()


def run(request: dict[str, Any]) -> dict[str, Any]:
    probe = request["probe"]
    stage = "importing torch"
    skipped_imports: list[str] = []
    torch_seconds = None
    started = time.perf_counter()
    try:
        import torch

        from mllint.confirm import isolate
        from mllint.confirm.build import BuildError, build
        from mllint.confirm.checks import CHECKS

        torch_seconds = time.perf_counter() - started
        started = time.perf_counter()
        torch.set_num_threads(1)
        top_name = probe["class_name"].split(".")[0]
        wanted = {probe["module"]: {top_name}}
        factory = request.get("factory")
        if factory:
            wanted[factory.partition(":")[0]] = {factory.partition(":")[2].split(".")[0]}
        skipped_imports = isolate.install([Path(root) for root in request["roots"]], wanted).skipped_imports
        stage = f"importing `{probe['module']}` (definitions only)"
        cls: Any = importlib.import_module(probe["module"])
        for part in probe["class_name"].split("."):
            cls = getattr(cls, part)
        stage = "building the model"
        built = build(cls, probe["qualname"], tuple(probe["constructions"]), factory)
        stage = "running the model"
        outcome = CHECKS[probe["check"]](built, probe["without_grad"])
        answer = {"status": outcome.status, "method": outcome.method, "evidence": outcome.evidence}
    except BuildError as error:
        answer = _unconfirmed(f"cannot build the model: {error}")
    except BaseException as error:  # noqa: BLE001 - user code: sys.exit and the like included
        answer = _unconfirmed(f"{stage} failed: {_reason(error, skipped_imports)}")
        answer["traceback"] = traceback.format_exc(limit=-4)
    answer["torch_import_seconds"] = torch_seconds
    answer["seconds"] = time.perf_counter() - started
    return answer


def _unconfirmed(reason: str) -> dict[str, Any]:
    return {"status": "unconfirmed", "method": "none", "evidence": reason}


def _reason(error: BaseException, skipped_imports: list[str]) -> str:
    text = describe_error(error)
    if isinstance(error, NameError):
        text += " (module-level code other than definitions is not run)"
    if isinstance(error, (NameError, AttributeError)) and skipped_imports:
        text += f"; imports that failed: {', '.join(skipped_imports)}"
    return text


if __name__ == "__main__":
    main()
