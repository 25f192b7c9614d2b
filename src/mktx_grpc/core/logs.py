"""Structured (JSON lines) logging for the whole process."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs full request URLs at INFO; some carry OAuth query parameters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # The embedded PostgreSQL narrates initdb and pg_ctl at INFO (a dozen lines on
    # every first start); its own log is in the data directory. Warnings still show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # pgserver asks platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR
    # is unset (containers, CI, ssh sessions); the fallback it takes is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def startup_banner(title: str, rows: Sequence[tuple[str, str]], out: TextIO | None = None) -> None:
    """Print what a starting process offers, for the person who started it: a title
    and aligned ``label  text`` rows, on stdout (the JSON logs go to stderr, so a
    log collector reading stderr never sees these lines)."""
    stream = out or sys.stdout
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title] + [f"  {label.ljust(width)}  {text}" for label, text in rows]
    stream.write("\n".join(lines) + "\n")
    stream.flush()


@contextmanager
def level(logger: str, value: int) -> Iterator[None]:
    """Run a block with ``logger`` at ``value`` (for example, a start-up step whose
    INFO lines a banner line replaces); restored afterwards."""
    target = logging.getLogger(logger)
    before = target.level
    target.setLevel(value)
    try:
        yield
    finally:
        target.setLevel(before)
