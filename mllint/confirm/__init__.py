"""Dynamic confirmation (``mllint check --confirm``): findings are confirmed or refuted by running
the models they concern in child processes. Only :mod:`mllint.confirm.build`,
:mod:`mllint.confirm.checks` and the child process import torch."""

from __future__ import annotations


def describe_error(error: BaseException) -> str:
    """One line naming what the project's code raised (``sys.exit`` included)."""
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r})"
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
