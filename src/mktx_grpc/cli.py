"""The ``mktx-grpc`` console script.

mktx-grpc serve                 gRPC on :50051 + webhook sidecar on :5000
mktx-grpc migrate               apply pending SQL migrations
mktx-grpc token --merchant ID   print a development JWT for a merchant
mktx-grpc worker                run the background loops only
mktx-grpc merchant-limits       set or clear a merchant's API rate-limit override
mktx-grpc x-sandbox             run the local X API sandbox in the foreground
mktx-grpc ai-standin            run the local OpenAI-compatible stand-in in the foreground
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from .core import logs
from .core.config import Settings
from .core.db import SchemaMismatch

log = logging.getLogger("mktx_grpc")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (faster I/O), else the default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def resolve_database(settings: Settings) -> Settings:
    """Fill in the embedded PostgreSQL URL when DATABASE_URL is unset."""
    if settings.database_url:
        return settings
    from .core.db import embedded_database_url

    url = embedded_database_url(settings.data_dir)
    log.debug("using embedded PostgreSQL in %s", settings.data_dir / "pg")
    return settings.replace(database_url=url)


#: Where the in-process X sandbox keeps its world (users, tokens, webhooks, DMs), in
#: the data directory, so a restarted demo keeps its connected account and webhook.
SANDBOX_STATE_FILE = "x-sandbox.json"


def _sandbox_settings(settings: Settings, cfg: Any, base_url: str) -> Settings:
    return settings.replace(
        x_consumer_key=cfg.consumer_key,
        x_consumer_secret=cfg.consumer_secret,
        x_client_id=cfg.oauth2_client_id,
        x_client_secret=cfg.oauth2_client_secret,
        x_bearer_token=cfg.app_bearer_token,
        x_sandbox=True,
        # A demo receives DMs as soon as the account connects (README walk-through).
        auto_register_webhook=True,
        x_api_base=base_url,
        x_authorize_base=base_url,
    )


def _listening(host: str, port: int) -> bool:
    import socket

    if port <= 0:
        return False
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _client_host(host: str) -> str:
    """Where to reach a server bound to ``host`` (a wildcard bind: on loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def start_sandbox_if_needed(
    settings: Settings, *, join_running: bool = False
) -> tuple[Settings, Any]:
    """With no X credentials, start the in-process X sandbox and point the client at it.

    It listens on ``settings.sandbox_port`` (default 5081, fixed so that a demo's
    URLs stay the same) with the rate limits of ``settings.sandbox_tier``, and keeps
    its state in ``data_dir/x-sandbox.json`` across restarts. With ``join_running``
    (``mktx-grpc worker`` beside a ``serve``) a sandbox already listening on that
    port is used instead: the worker must act on the same X as the server (failing
    that it starts one of its own, without a state file). Raises
    ValueError with what to do when the port is taken or the tier unknown.
    """
    if not settings.uses_sandbox:
        return settings, None
    from .sandbox import SandboxConfig, SandboxServer

    host = _client_host(settings.sandbox_host)
    if join_running and _listening(host, settings.sandbox_port):
        url = f"http://{host}:{settings.sandbox_port}"
        log.info("no X credentials: using the X sandbox already running at %s", url)
        return _sandbox_settings(settings, SandboxConfig(), url), None
    if join_running:
        # A worker with a sandbox of its own: not the server's X, so it must not
        # write the server's state file either (docker compose shares /data).
        log.warning(
            "no X credentials and no X sandbox at %s:%d: the worker starts its own, "
            "which knows none of the server's accounts",
            host,
            settings.sandbox_port,
        )
    state_file = None if join_running else settings.data_dir / SANDBOX_STATE_FILE
    cfg = SandboxConfig(tier=settings.sandbox_tier, state_file=state_file)
    try:
        server = SandboxServer(
            cfg,
            host=settings.sandbox_host if not join_running else "127.0.0.1",
            port=settings.sandbox_port,
        )
    except OSError as exc:
        raise ValueError(
            f"the built-in X sandbox cannot listen on port {settings.sandbox_port} "
            f"({exc.strerror}); set MKTX_SANDBOX_PORT to a free port (0: any)"
        ) from None
    server.start()
    log.debug("no X credentials: using the built-in X sandbox at %s", server.base_url)
    return _sandbox_settings(settings, cfg, server.base_url), server


def _serve_child(settings: Settings) -> None:
    from .app import serve_process

    logs.configure(settings.log_level)
    try:
        _run(serve_process(settings, primary=False))
    finally:
        # A multiprocessing child exits without atexit: write the queued lines.
        logs.flush()


def _display_host(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "") else host


def _database_label(settings: Settings, embedded: bool) -> str:
    if embedded:
        return f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
    from psycopg.conninfo import conninfo_to_dict

    # Host, port and database only: the URL may carry a password.
    info = conninfo_to_dict(settings.database_url)
    where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
    return f"PostgreSQL at {where}, database {info.get('dbname') or info.get('user') or '?'}"


def serve_banner(
    settings: Settings,
    *,
    grpc_port: int,
    embedded: bool,
    migrations: list[str],
    sandbox: Any,
    ai_standin: Any = None,
) -> list[tuple[str, str]]:
    """The start-up lines of ``serve``: where everything is and how to begin."""
    host = _display_host(settings.grpc_host)
    procs = f" ({settings.workers} processes)" if settings.workers > 1 else ""
    sidecar = f"http://{_display_host(settings.webhook_host)}:{settings.webhook_port}"
    db = _database_label(settings, embedded)
    if migrations:
        db += f" ({len(migrations)} migration(s) applied)"
    rows = [
        ("gRPC", f"{host}:{grpc_port}{procs}   grpcurl -plaintext {host}:{grpc_port} list"),
        ("webhooks", f"{sidecar}/webhooks/twitter   metrics: {sidecar}/metrics"),
        ("data", f"{settings.data_dir}"),
        ("database", db),
    ]
    if sandbox is not None:
        rows.append(
            (
                "X",
                f"built-in X sandbox at {sandbox.base_url} (tier {sandbox.config.tier}; "
                f"admin API: {sandbox.base_url}/_sandbox; state in {sandbox.config.state_file})",
            )
        )
    else:
        rows.append(("X", f"X API at {settings.x_api_base}"))
    if ai_standin is not None:
        rows.append(
            (
                "AI",
                f"built-in stand-in at {ai_standin.openai_base_url} (not a model: it answers "
                f"from each merchant's intents; admin API: {ai_standin.base_url}/_standin; "
                "set MKTX_AI_BASE_URL and MKTX_AI_API_KEY for a real model)",
            )
        )
    else:
        rows.append(("AI", f"model endpoint {settings.ai_base_url}"))
    if not settings.run_worker:
        rows.append(("worker", "background loops off (MKTX_RUN_WORKER=false)"))
    rows.append(("token", f"{Path(sys.argv[0]).as_posix()} token --merchant <merchant UUID>"))
    return rows


def _metrics_dir() -> tuple[Path, bool]:
    """Where ``serve``'s processes count their metrics: PROMETHEUS_MULTIPROC_DIR when
    the operator set it, else a fresh temporary directory (removed on exit)."""
    from .core.metrics import MULTIPROC_ENV, use_multiprocess_dir

    given = os.environ.get(MULTIPROC_ENV, "").strip()
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="mktx-metrics-"))
    use_multiprocess_dir(path)
    return path, not given


def cmd_serve(args: argparse.Namespace) -> int:
    # First of all: prometheus-client picks per-process files at its first metric,
    # and every process of --workers N must count in the same directory.
    metrics_dir, temporary = _metrics_dir()
    try:
        return _serve(args)
    finally:
        if temporary:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.port is not None:
        settings = settings.replace(grpc_port=args.port)
    if args.webhook_port is not None:
        settings = settings.replace(webhook_port=args.webhook_port)
    if args.workers is not None:
        settings = settings.replace(workers=args.workers)
    logs.configure(settings.log_level)
    embedded = not settings.database_url
    settings = resolve_database(settings)
    from .core.db import migrate

    # One banner line says how many were applied instead of one log line each.
    with logs.level("mktx_grpc.core.db", logging.WARNING):
        applied = migrate(settings.database_url)
    settings, sandbox = start_sandbox_if_needed(settings)
    settings, ai_standin = start_ai_standin_if_needed(settings)
    from .app import serve_process

    def ready(grpc_port: int) -> None:
        rows = serve_banner(
            settings,
            grpc_port=grpc_port,
            embedded=embedded,
            migrations=applied,
            sandbox=sandbox,
            ai_standin=ai_standin,
        )
        logs.startup_banner("mktx-grpc serve: ready", rows)

    # Extra processes share the port through SO_REUSEPORT; the kernel spreads
    # connections across them. Only this (primary) process runs sidecar and loops.
    children = []
    ctx = multiprocessing.get_context("spawn")
    for _ in range(settings.workers - 1):
        proc = ctx.Process(target=_serve_child, args=(settings,), daemon=True)
        proc.start()
        children.append(proc)
    try:
        _run(serve_process(settings, primary=True, on_ready=ready))
    finally:
        for proc in children:
            proc.terminate()
        from .core.metrics import mark_process_dead

        for proc in children:
            proc.join(settings.shutdown_grace + 5)
            if proc.pid is not None:
                mark_process_dead(proc.pid)
        if sandbox is not None:
            sandbox.stop()
        if ai_standin is not None:
            ai_standin.stop()
    return 0


def start_ai_standin_if_needed(settings: Settings) -> tuple[Settings, Any]:
    """With no model configured (``MKTX_AI_BASE_URL`` unset), start the built-in
    OpenAI-compatible stand-in on a free loopback port and point the model client at
    it. It is a stand-in, not a model: it answers deterministically from each
    merchant's intents and example phrases. Returns the settings and the server
    (None when a model is configured)."""
    if not settings.uses_ai_standin:
        return settings, None
    from .ai_standin import AIStandinServer

    server = AIStandinServer()
    server.start()
    log.debug("no AI model configured: using the built-in stand-in at %s", server.base_url)
    return (
        settings.replace(ai_base_url=server.openai_base_url, ai_api_key=server.api_key),
        server,
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    settings = resolve_database(settings)
    from .core.db import migrate

    applied = migrate(settings.database_url)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .core.auth import mint_token

    try:
        merchant = UUID(args.merchant)
    except ValueError:
        print("--merchant must be a UUID", file=sys.stderr)
        return 2
    # Never invent a secret here: a token signed with a second secret would be
    # refused by the server (see Settings.from_env).
    settings = Settings.from_env(create_secrets=False)
    print(mint_token(settings, merchant, user_id=args.user, ttl_seconds=args.ttl))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    settings = resolve_database(settings)
    from .core.db import check_schema

    check_schema(settings.database_url)
    settings, sandbox = start_sandbox_if_needed(settings, join_running=True)
    # The stand-in is stateless and deterministic, so a worker's own answers as the
    # server's would.
    settings, ai_standin = start_ai_standin_if_needed(settings)
    from .worker.main import worker_process

    try:
        _run(worker_process(settings))
    finally:
        if sandbox is not None:
            sandbox.stop()
        if ai_standin is not None:
            ai_standin.stop()
    return 0


def cmd_merchant_limits(args: argparse.Namespace) -> int:
    """Set (or with --clear remove) the operator's rate-limit override for a merchant."""
    try:
        merchant = UUID(args.merchant)
    except ValueError:
        print("--merchant must be a UUID", file=sys.stderr)
        return 2
    if args.clear == (args.per_minute is not None):
        print("give --per-minute N (and optionally --burst B), or --clear", file=sys.stderr)
        return 2
    if (args.per_minute is not None and args.per_minute <= 0) or (args.burst or 0) < 0:
        print("--per-minute must be positive and --burst not negative", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    logs.configure(settings.log_level)  # before pgserver: it warns and narrates
    settings = resolve_database(settings)
    from .core.db import check_schema, make_pool, use_connection
    from .store import merchants as store

    check_schema(settings.database_url)

    async def apply() -> None:
        pool = make_pool(settings.database_url, min_size=1, max_size=1)
        await pool.open(wait=True, timeout=30)
        try:
            async with use_connection(pool, transaction=True):
                row = await store.set_rate_limit(merchant, args.per_minute, args.burst)
        finally:
            await pool.close()
        per_minute = row["rate_limit_per_minute"] or settings.rate_limit_per_minute
        burst = row["rate_limit_burst"]
        burst = settings.rate_limit_burst if burst is None else burst
        source = "override" if row["rate_limit_per_minute"] else "service default"
        print(f"merchant {merchant}: {per_minute} requests/min, burst {burst} ({source})")

    _run(apply())
    return 0


def cmd_analytics_rebuild(args: argparse.Namespace) -> int:
    """Recompute the analytics rollups from raw data (worker/rollups.py)."""
    merchant = None
    if args.merchant:
        try:
            merchant = UUID(args.merchant)
        except ValueError:
            print("--merchant must be a UUID", file=sys.stderr)
            return 2
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            print("--since must be an ISO date or time (2026-01-31)", file=sys.stderr)
            return 2
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    settings = Settings.from_env()
    logs.configure(settings.log_level)  # before pgserver: it warns and narrates
    settings = resolve_database(settings)
    from .core.db import check_schema, make_pool
    from .worker.rollups import rebuild

    check_schema(settings.database_url)

    async def apply() -> None:
        pool = make_pool(settings.database_url, min_size=1, max_size=2)
        await pool.open(wait=True, timeout=30)
        try:
            started = time.monotonic()
            done = await rebuild(pool, merchant_id=merchant, since=since)
        finally:
            await pool.close()
        print(
            f"rebuilt analytics for {done['merchants']} merchant(s): "
            f"{done['contacts']} contacts, {done['conversations']} conversations "
            f"in {time.monotonic() - started:.1f} s"
        )

    _run(apply())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mktx-grpc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve gRPC and the webhook sidecar")
    p.add_argument("--port", type=int, help="gRPC port (default MKTX_GRPC_PORT or 50051)")
    p.add_argument("--webhook-port", type=int, help="sidecar port (default 5000)")
    p.add_argument("--workers", type=int, help="SO_REUSEPORT processes (default 1)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply pending migrations")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("token", help="print a development JWT")
    p.add_argument("--merchant", required=True, help="merchant UUID")
    p.add_argument("--user", default="dev", help="user id (sub claim)")
    p.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("worker", help="run background loops")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("merchant-limits", help="set or clear a merchant's API rate limit")
    p.add_argument("--merchant", required=True, help="merchant UUID")
    p.add_argument("--per-minute", type=int, help="sustained requests per minute")
    p.add_argument("--burst", type=int, help="requests allowed at once above the rate")
    p.add_argument("--clear", action="store_true", help="back to the service default")
    p.set_defaults(func=cmd_merchant_limits)
    p = sub.add_parser("analytics", help="analytics rollups (rebuild)")
    asub = p.add_subparsers(dest="analytics_command", required=True)
    p = asub.add_parser("rebuild", help="recompute the analytics rollups from raw data")
    p.add_argument("--merchant", help="only this merchant (UUID); default every merchant")
    p.add_argument("--since", help="only contacts and conversations changed since (ISO date)")
    p.set_defaults(func=cmd_analytics_rebuild)
    sub.add_parser(
        "x-sandbox",
        help="run the local X sandbox (--host, --port, --tier, --state-file, --no-rate-limits)",
    )
    sub.add_parser(
        "ai-standin",
        help="run the local OpenAI-compatible stand-in (--host, --port, --api-key, --latency-ms)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["x-sandbox"]:  # its options belong to the sandbox's own parser
        from .sandbox import main as sandbox_main

        return int(sandbox_main(argv[1:]))
    if argv[:1] == ["ai-standin"]:  # likewise the stand-in's
        from .ai_standin import main as standin_main

        return int(standin_main(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, SchemaMismatch) as exc:  # say which, no traceback
        print(f"mktx-grpc: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
