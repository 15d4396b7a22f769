"""Test-only hooks that hold one request or one task at a known moment, so that a test can kill the
process serving it there. Armed by a file in REALQA_FAULT_DIR; claimed by exactly one request or task.

- hold-submit: its text is "before" or "after": the next submit waits before its view runs (nothing
  stored yet) or after it returned (label committed, response not yet sent).
- hold-task: the next task that starts waits before its body runs.

The process that claimed the hold writes its pid to held-<what>-<pid> and sleeps."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from django.http import HttpRequest, HttpResponse

HOLD_SECONDS = 120


def claim(what: str) -> str | None:
    """The armed phase when this process won the hold, else None."""
    folder = os.environ.get("REALQA_FAULT_DIR")
    if not folder:
        return None
    armed = Path(folder) / f"hold-{what}"
    mine = Path(folder) / f"claimed-{what}-{os.getpid()}"
    try:
        os.rename(armed, mine)  # atomic: one winner
    except FileNotFoundError:
        return None
    return mine.read_text().strip() or "before"


def hold(what: str) -> None:
    folder = Path(os.environ["REALQA_FAULT_DIR"])
    (folder / f"held-{what}-{os.getpid()}").write_text(str(os.getpid()))
    time.sleep(HOLD_SECONDS)


class HoldRequestMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        phase = claim("submit") if request.path.endswith("/submit") else None
        if phase == "before":
            hold("submit")
        response = self.get_response(request)
        if phase == "after":
            hold("submit")
        return response
