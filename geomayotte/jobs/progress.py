"""Progress of the job being run, reported by the process (no-op outside a job)."""
from __future__ import annotations

import contextvars
from typing import Callable

_reporter: contextvars.ContextVar[Callable[[int, str], None] | None] = contextvars.ContextVar(
    'geomayotte_progress', default=None)


def report(percent: int, message: str) -> None:
    hook = _reporter.get()
    if hook is not None:
        hook(percent, message)


def set_reporter(hook: Callable[[int, str], None] | None):
    return _reporter.set(hook)


def reset(token) -> None:
    _reporter.reset(token)
