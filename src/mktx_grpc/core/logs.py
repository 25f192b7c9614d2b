"""Structured (JSON lines) logging for the whole process.

Lines are encoded with orjson and written in batches off the event loop: a caller
appends its encoded line to a queue (a ``deque`` append, safe across threads) and a
daemon thread writes what has gathered every 50 ms, or sooner when many lines wait,
in one ``write``. So a log call never waits for stderr (a slow pipe, a full
terminal), and the per-RPC line (:func:`rpc_line`) costs an encode and an append.
Lines are flushed at exit and by :func:`flush`.

The per-RPC line bypasses the stdlib ``logging`` record machinery (a LogRecord, the
``extra`` dict copied into it, the handler locks): it is written straight to the
writer when :func:`configure` installed one, with the same fields the formatter
would give it; without one (a library use, tests with ``caplog``) it goes through
the ``mktx_grpc.rpc`` logger as before.
"""

from __future__ import annotations

import atexit
import collections
import logging
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, TextIO

import orjson

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

RPC_LOGGER = "mktx_grpc.rpc"
_rpc_log = logging.getLogger(RPC_LOGGER)


def _iso_ms(t: float, _cache: list[Any] = [-1, ""]) -> str:  # noqa: B006 - a per-second cache
    """``t`` as ISO 8601 UTC with milliseconds (``2026-01-02T03:04:05.678+00:00``),
    the date and time formatted once per second."""
    second = int(t)
    if second != _cache[0]:
        _cache[0] = second
        _cache[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_cache[1]}.{int((t - second) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class LineWriter:
    """Writes lines to a binary stream in batches, from a daemon thread.

    :meth:`write` only appends to a queue. The thread writes everything queued every
    ``interval`` seconds, or as soon as ``batch`` lines wait. :meth:`flush` writes
    what is queued now, on the calling thread; :meth:`close` flushes and stops the
    thread. A failing stream (closed, a broken pipe) drops the batch: logging must
    not take the process down.
    """

    def __init__(self, stream: IO[bytes], *, interval: float = 0.05, batch: int = 512) -> None:
        self._stream = stream
        self._interval = interval
        self._batch = batch
        self._pending: collections.deque[bytes] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        """Queue one line (ending in a newline)."""
        self._pending.append(line)
        if len(self._pending) >= self._batch:
            self._wake.set()

    def flush(self) -> None:
        with self._lock:
            lines = []
            pending = self._pending
            while pending:
                lines.append(pending.popleft())
            if not lines:
                return
            try:
                self._stream.write(b"".join(lines))
                self._stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=2)
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()


class WriterHandler(logging.Handler):
    """A logging handler that formats on the caller's thread and queues the line on a
    :class:`LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record).encode() + b"\n")
        except Exception:  # pragma: no cover - as logging.Handler does
            self.handleError(record)


_writer: LineWriter | None = None


def set_writer(writer: LineWriter | None) -> LineWriter | None:
    """Make ``writer`` the one the per-RPC line goes to (None: through ``logging``);
    returns the previous one. :func:`configure` calls it; tests use it to read the
    lines."""
    global _writer
    previous, _writer = _writer, writer
    return previous


def flush() -> None:
    """Write every queued line now."""
    if _writer is not None:
        _writer.flush()


def rpc_line(method: str, code: str, duration_ms: float, merchant_id: str, request_id: str) -> None:
    """The one line per RPC (logger ``mktx_grpc.rpc``, message ``rpc``): method, status
    code name, duration in milliseconds, merchant id (empty before auth) and request
    id. Written only when that logger is enabled for INFO."""
    if not _rpc_log.isEnabledFor(logging.INFO):
        return
    writer = _writer
    if writer is None:
        _rpc_log.info(
            "rpc",
            extra={
                "rpc_method": method,
                "code": code,
                "duration_ms": duration_ms,
                "merchant_id": merchant_id,
                "request_id": request_id,
            },
        )
        return
    writer.write(
        orjson.dumps(
            {
                "time": _iso_ms(time.time()),
                "level": "INFO",
                "logger": RPC_LOGGER,
                "message": "rpc",
                "rpc_method": method,
                "code": code,
                "duration_ms": duration_ms,
                "merchant_id": merchant_id,
                "request_id": request_id,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
    )


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process, batched (see the module docstring)."""
    global _writer
    if _writer is not None:
        _writer.close()
    writer = LineWriter(sys.stderr.buffer)
    set_writer(writer)
    atexit.register(writer.close)
    handler = WriterHandler(writer)
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
