"""Structured logging: one JSON object per line, each carrying the id of the request or Celery task it
belongs to, so one rater's failed submit can be followed across the web machines and the workers.

Imported by the LOGGING setting (dictConfig), so it must not import Django models or anything heavy."""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import datetime, timezone

request_id_var: ContextVar[str | None] = ContextVar("realqa_request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("realqa_task_id", default=None)
task_name_var: ContextVar[str | None] = ContextVar("realqa_task_name", default=None)

# A client's (or the proxy's) id is kept only when it is short and plain: it lands in every log line.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Everything a LogRecord has by itself; any other attribute came in through `extra=` and is worth keeping.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_CONTEXT = {"request_id", "task_id", "task_name", "context"}


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is a plausible id, else a new one."""
    if header and _ACCEPTED_REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()  # as random as uuid4().hex, for a third of the cost


class ContextFilter(logging.Filter):
    """Puts the current request and task ids on every record (None outside a request or a task), so
    both the JSON and the plain format can show them. Goes on the handler, so records of every logger
    get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a 4xx/5xx after the middleware has finished; the request it passes has the id.
        record.request_id = (
            getattr(record, "request_id", None)
            or request_id_var.get()
            or getattr(getattr(record, "request", None), "request_id", None)
        )
        record.task_id = getattr(record, "task_id", None) or task_id_var.get()
        record.task_name = getattr(record, "task_name", None) or task_name_var.get()
        # One short token for the plain format: "req=...", "task=..." or "-".
        record.context = (
            f"req={record.request_id}" if record.request_id else f"task={record.task_id}" if record.task_id else "-"
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the request or task id
    when there is one, the exception text when there is one, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id", "task_name"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _CONTEXT and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a stray object in `extra=` must never turn a log line into an exception.
        return json.dumps(entry, default=str, ensure_ascii=False)
