"""GetTemplate throughput: the full service against a bare grpc.aio handler (issue 2 §6).

    .venv/bin/python bench/grpc_bench.py            # full run, writes bench/results/grpc_get_template.md
    .venv/bin/python bench/grpc_bench.py --quick    # shorter runs, no results file
    .venv/bin/python bench/grpc_bench.py --defaults # issue 14: writes bench/results/grpc.md

``--defaults`` (issue 14 §2) runs three sides in one run, one process each: the bare
handler, the service at its defaults (INFO logging, rate limiting, metrics) and the
same with coalesced reads on (MKTX_COALESCE_READS=true); GetTemplate and GetContact (with
its engagement figures); peak req/s and p50/p99 at half of the bare handler's peak.

Needs ``h2load`` (Debian: ``apt-get install nghttp2-client``) and a PostgreSQL whose
admin URL is ``DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
The throwaway database ``mktx_bench`` is dropped and recreated, migrated, and given one
QUICK_REPLY template for one merchant.

Both servers run as subprocesses on uvloop with an autocommit pool of min 2 / max 10
connections per process:

* service: ``mktx-grpc serve`` — the production composition: logging → errors → auth
  (HS256 JWT) → validation → unit of work → TemplatesServicer, plus health, reflection
  and, in the primary process, the webhook sidecar and the background loops;
* bare: ``bench/bare_server.py`` — one GetTemplate handler, same SELECT, same message.

Before each phase a real grpc client checks that both return the identical Template
and that a forged token gets UNAUTHENTICATED from the service. During each h2load run
the response bytes per request are checked against the size of a real answer, because
h2load counts a gRPC error (HTTP 200 with grpc-status in the trailers) as a success.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from mktx.v1 import contacts_pb2, contacts_pb2_grpc, templates_pb2, templates_pb2_grpc
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import migrate

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results" / "grpc_get_template.md"
METHOD = "/mktx.v1.TemplatesService/GetTemplate"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "mktx_bench"
JWT_SECRET = "bench-jwt-secret-" + "0123456789abcdef" * 2
POOL_MIN, POOL_MAX = 2, 10


# ------------------------------------------------------------------ setup


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup_database(admin_url: str) -> tuple[str, uuid.UUID, uuid.UUID]:
    """Recreate mktx_bench, migrate it, insert one template. Returns (url, merchant, id)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
    url = make_conninfo(admin_url, dbname=BENCH_DB)
    migrate(url)
    merchant = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """INSERT INTO templates (merchant_id, name, description, type, content,
                                      quick_replies, variables, tags)
               VALUES (%s, %s, %s, 'QUICK_REPLY', %s, %s, %s, %s) RETURNING id""",
            (
                merchant,
                "Spring sale follow-up",
                "Sent to contacts who opened the spring sale DM",
                "Hi {{first_name}}, thanks for looking at {{product}}! Want the 20% code?",
                Jsonb(
                    [
                        {"label": "Yes please", "description": "Send the code", "metadata": "yes"},
                        {"label": "Not now", "description": "", "metadata": "no"},
                    ]
                ),
                ["first_name", "product"],
                ["sale", "spring"],
            ),
        ).fetchone()
        conn.execute("VACUUM ANALYZE templates")
    assert row is not None
    return url, merchant, row[0]


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


# ------------------------------------------------------------------ servers


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    describe: str
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_service(
    db_url: str,
    workers: int,
    log_level: str,
    tmp: Path,
    *,
    name: str = "service",
    extra_env: dict[str, str] | None = None,
    wrapper: list[str] | None = None,
) -> Server:
    """``wrapper``: a command the server runs under (instructions.py: valgrind)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "MKTX_JWT_SECRET": JWT_SECRET,
        "MKTX_GRPC_HOST": "127.0.0.1",
        "MKTX_GRPC_PORT": str(port),
        "MKTX_WEBHOOK_HOST": "127.0.0.1",
        "MKTX_WEBHOOK_PORT": str(free_port()),
        "MKTX_WORKERS": str(workers),
        "MKTX_POOL_MIN_SIZE": str(POOL_MIN),
        "MKTX_POOL_MAX_SIZE": str(POOL_MAX),
        "MKTX_LOG_LEVEL": log_level,
        "MKTX_DATA_DIR": str(tmp / "data"),
        # Real-looking X credentials so no in-process X sandbox thread is started,
        # as in production.
        "X_CONSUMER_KEY": "bench-consumer-key",
        "X_CONSUMER_SECRET": "bench-consumer-secret",
        **(extra_env or {}),
    }
    log_path = tmp / f"{name}-w{workers}-{log_level.lower()}.log"
    cmd = [*(wrapper or []), str(VENV_BIN / "mktx-grpc"), "serve"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), cwd=ROOT
    )
    describe = (
        f"`mktx-grpc serve`, MKTX_WORKERS={workers}, uvloop, pool {POOL_MIN}..{POOL_MAX}"
        f"/process, MKTX_LOG_LEVEL={log_level}"
        + "".join(f", {k}={v}" for k, v in (extra_env or {}).items())
    )
    return Server(name, port, proc, describe, log_path)


def start_bare(
    db_url: str,
    merchant: uuid.UUID,
    workers: int,
    loop: str,
    tmp: Path,
    *,
    wrapper: list[str] | None = None,
) -> Server:
    port = free_port()
    log_path = tmp / f"bare-w{workers}-{loop}.log"
    cmd = [
        *(wrapper or []),
        sys.executable,
        str(ROOT / "bench" / "bare_server.py"),
        "--database-url",
        db_url,
        "--merchant",
        str(merchant),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        loop,
        "--pool-min",
        str(POOL_MIN),
        "--pool-max",
        str(POOL_MAX),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), cwd=ROOT)
    describe = (
        f"`bench/bare_server.py`, --workers {workers}, {loop}, pool {POOL_MIN}..{POOL_MAX}/process"
    )
    return Server("bare", port, proc, describe, log_path)


async def wait_ready(server: Server, *, health: bool, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log_path.read_text()[-3000:]}")
            try:
                if health:
                    resp = await health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(service=""), timeout=1
                    )
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                else:
                    await asyncio.wait_for(ch.channel_ready(), timeout=1)
                    return
            except (grpc.aio.AioRpcError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.name} not ready after {within}s")
            await asyncio.sleep(0.2)


async def get_template(port: int, template_id: uuid.UUID, token: str | None) -> bytes:
    """One real gRPC GetTemplate call; returns the serialized Template."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        md = [("authorization", f"Bearer {token}")] if token else None
        resp = await templates_pb2_grpc.TemplatesServiceStub(ch).GetTemplate(
            templates_pb2.GetTemplateRequest(id=str(template_id)), metadata=md, timeout=5
        )
        return resp.SerializeToString()


async def check_correctness(
    service: Server, bare: Server, template_id: uuid.UUID, token: str
) -> int:
    """Both return the same non-empty Template; a forged token is UNAUTHENTICATED.
    Returns the serialized response size."""
    svc = await get_template(service.port, template_id, token)
    base = await get_template(bare.port, template_id, None)
    tpl = templates_pb2.Template.FromString(svc)
    if tpl.id != str(template_id) or not tpl.quick_replies or not tpl.etag:
        raise AssertionError(f"service returned an unexpected template: {tpl}")
    if svc != base:
        raise AssertionError("service and bare handler returned different messages")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    try:
        await get_template(service.port, template_id, forged)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise AssertionError(f"forged token gave {exc.code()}") from None
    else:
        raise AssertionError("forged token was accepted")
    return len(svc)


# ------------------------------------------------------------------ h2load


@dataclass
class Run:
    label: str
    side: str
    config: str
    rps: float
    done: int
    succeeded: int
    failed: int
    data_per_req: float
    seconds: float
    cpu_us_per_req: float
    loadavg: str


@dataclass
class Load:
    clients: int
    streams: int
    duration: int
    warmup: int
    threads: int = 1
    commands: list[str] = field(default_factory=list)


_FINISHED = re.compile(r"finished in ([\d.]+)s, ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout"
)
_TRAFFIC = re.compile(r"traffic: .*, \S+ \((\d+)\) data")


def h2load_args(
    load: Load,
    port: int,
    body: Path,
    token: str | None,
    *,
    requests: int | None = None,
    duration: int | None = None,
    method: str | None = None,
    rps: float | None = None,
    log_file: Path | None = None,
) -> list[str]:
    """``-n requests`` for measured runs (h2load's DATA byte count is then exact);
    ``-D duration`` for warm-ups."""
    amount = ["-n", str(requests)] if requests else ["-D", str(duration)]
    cmd = [
        "h2load",
        "-c",
        str(load.clients),
        "-m",
        str(load.streams),
        "-t",
        str(load.threads),
        *amount,
        "-d",
        str(body),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
    ]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    if rps:
        cmd += [f"--rps={rps}"]
    if log_file:
        cmd += [f"--log-file={log_file}"]
    return [*cmd, f"http://127.0.0.1:{port}{method or METHOD}"]


def run_h2load(
    load: Load,
    server: Server,
    body: Path,
    token: str | None,
    label: str,
    expect_bytes: int,
    *,
    requests: int | None = None,
    warmup_seconds: int | None = None,
    method: str | None = None,
    rps: float | None = None,
    log_file: Path | None = None,
) -> Run:
    """A measured run of ``requests`` requests, or an unrecorded ``warmup_seconds`` run;
    with ``rps`` (per connection) an open-loop run at that rate, and with ``log_file``
    h2load's per-request log (for latency percentiles)."""
    cmd = h2load_args(
        load,
        server.port,
        body,
        token,
        requests=requests,
        duration=warmup_seconds,
        method=method,
        rps=rps,
        log_file=log_file,
    )
    if requests:
        shown = [
            re.sub(r"^authorization: Bearer .*", "authorization: Bearer $TOKEN", a) for a in cmd
        ]
        shown = ["$N" if a == str(requests) else a for a in shown]
        shown = ["body.bin" if a == str(body) else a for a in shown]
        shown = [a for a in shown if not a.startswith(("--rps=", "--log-file="))]
        port = "$BARE_PORT" if server.name == "bare" else "$SERVICE_PORT"
        shown = [a.replace(f":{server.port}/", f":{port}/") for a in shown]
        line = " ".join(f'"{a}"' if " " in a else a for a in shown)
        if line not in load.commands:
            load.commands.append(line)
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    cpu0 = process_tree_cpu(server.proc.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = process_tree_cpu(server.proc.pid) - cpu0
    text = out.stdout
    fin, req, traffic = _FINISHED.search(text), _REQUESTS.search(text), _TRAFFIC.search(text)
    if out.returncode != 0 or not (fin and req and traffic):
        raise RuntimeError(f"h2load failed ({out.returncode}):\n{text}\n{out.stderr}")
    done, succeeded = int(req.group(3)), int(req.group(4))
    failed = int(req.group(5)) + int(req.group(6)) + int(req.group(7))
    data_per_req = int(traffic.group(1)) / max(1, done)
    bad = succeeded == 0 or failed > 0
    if requests:
        # A successful GetTemplate carries exactly one 5-byte-prefixed Template in DATA
        # frames; a gRPC error (HTTP 200, grpc-status in trailers) carries none.
        bad = bad or done != requests or int(traffic.group(1)) != done * (expect_bytes + 5)
    if bad:
        raise RuntimeError(
            f"{label}: responses are not all templates (succeeded {succeeded}, failed "
            f"{failed}, {data_per_req:.1f} data bytes/request, expected {expect_bytes + 5})"
            f"\n{text}"
        )
    return Run(
        label,
        server.name,
        server.describe,
        float(fin.group(2)),
        done,
        succeeded,
        failed,
        data_per_req,
        float(fin.group(1)),
        cpu / max(1, done) * 1e6,
        loadavg,
    )


# ------------------------------------------------------------------ report


def machine_info(admin_url: str) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(admin_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
    h2 = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    import grpc as _g
    import psycopg_pool
    import uvloop

    return [
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- `nproc`: {os.cpu_count() if not hasattr(os, 'sched_getaffinity') else len(os.sched_getaffinity(0))}",
        f"- CPU: {cpu}",
        f"- kernel: {platform.release()}; Python {platform.python_version()}",
        f"- grpcio {_g.__version__}, psycopg {psycopg.__version__}, psycopg_pool "
        f"{psycopg_pool.__version__}, uvloop {uvloop.__version__}, {h2}",
        f"- PostgreSQL {pg[0] if pg else '?'} on the same box (127.0.0.1:5432)",
        "- everything (h2load, server processes, PostgreSQL) shares the same 2 cores",
    ]


def table(runs: list[Run]) -> list[str]:
    out = [
        "| # | phase | side | req/s | requests | data B/req | server CPU µs/req | loadavg before |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(runs, 1):
        out.append(
            f"| {i} | {r.label} | {r.side} | {r.rps:,.0f} | {r.done:,} | "
            f"{r.data_per_req:.0f} | {r.cpu_us_per_req:,.0f} | {r.loadavg} |"
        )
    return out


def ratio_line(title: str, svc: list[Run], bare: list[Run]) -> tuple[str, float]:
    s, b = statistics.mean(r.rps for r in svc), statistics.mean(r.rps for r in bare)
    ratio = s / b
    runs_s = ", ".join(f"{r.rps:,.0f}" for r in svc)
    runs_b = ", ".join(f"{r.rps:,.0f}" for r in bare)
    cpu_s = statistics.mean(r.cpu_us_per_req for r in svc)
    cpu_b = statistics.mean(r.cpu_us_per_req for r in bare)
    return (
        f"| {title} | {runs_s} (mean {s:,.0f}) | {runs_b} (mean {b:,.0f}) | "
        f"**{ratio:.2f}×** | {cpu_s:,.0f} / {cpu_b:,.0f} |"
    ), ratio


NOTES = [
    "## Notes",
    "",
    "- Server changes made for this benchmark (A/B against the tree without each change,",
    "  1 process, same load, alternating runs): `TokenVerifier` remembers verified tokens",
    "  within their iat/nbf/exp window (PyJWT cost ~74 µs/call; server CPU 728 → 613 µs/req,",
    "  1,549 → 1,825 req/s), and `GrpcApp` adds handlers as generic only, because grpc.aio's",
    "  accept loop runs `asyncio.wait` over one pending future per registered method (~85)",
    "  for every RPC (606 → 568 µs/req, 1,783 → 1,886 req/s).",
    "- With equal processes the service cannot reach 1.0×: it does everything the bare",
    "  handler does plus the chain, so that ratio measures the chain's cost. More service",
    "  processes help only while cores are idle; on this box h2load, PostgreSQL and the",
    "  server already fill both cores with one process per side, so req/s follows",
    "  1 / (CPU per request) and a second process adds contention, not capacity.",
    "- Keep connections × streams well below 1,000: at -c 32 -m 50 (1,600 in flight) about",
    "  a quarter of the calls ended as gRPC errors before reaching the interceptors",
    "  (h2load still counted them as HTTP 200; the DATA-bytes check caught it).",
    "- The box is shared (other benchmarks and PostgreSQL may run at the same time);",
    "  `loadavg before` shows it, and server CPU µs/request is less sensitive to it than",
    "  req/s.",
    "",
]


# ------------------------------------------------------------------ issue 2 run


async def amain(args: argparse.Namespace) -> int:
    admin_url = os.environ.get("DATABASE_URL", "").strip() or DEFAULT_ADMIN_URL
    t0 = time.monotonic()
    db_url, merchant, template_id = setup_database(admin_url)
    token = mint_token(
        Settings(jwt_secret=JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=3600
    )
    tmp = Path(tempfile.mkdtemp(prefix="mktx-bench-"))
    body = tmp / "get_template.bin"
    body.write_bytes(
        grpc_frame(templates_pb2.GetTemplateRequest(id=str(template_id)).SerializeToString())
    )
    load = Load(
        clients=args.clients, streams=args.streams, duration=args.duration, warmup=args.warmup
    )
    rounds = args.rounds
    runs: list[Run] = []
    phases: list[tuple[str, list[Run], list[Run]]] = []
    configs: dict[str, str] = {}

    async def phase(
        title: str,
        svc_workers: int,
        bare_workers: int,
        log_level: str,
        n_rounds: int,
        svc_only: bool = False,
    ) -> tuple[list[Run], list[Run]]:
        service = start_service(db_url, svc_workers, log_level, tmp)
        bare = start_bare(db_url, merchant, bare_workers, "uvloop", tmp)
        try:
            await wait_ready(service, health=True)
            await wait_ready(bare, health=False)
            size = await check_correctness(service, bare, template_id, token)
            configs[f"service ({title})"] = service.describe
            if not svc_only:
                configs[f"bare ({title})"] = bare.describe
            print(
                f"== {title}: both return the same {size}-byte Template; forged token -> "
                "UNAUTHENTICATED",
                flush=True,
            )
            # Untimed warm-up of both (code paths, pool at its working size); its rate
            # sizes the measured runs (-n) to about --duration seconds each.
            n: dict[str, int] = {}
            for side, srv in (("service", service), ("bare", bare)):
                if svc_only and side == "bare":
                    continue
                w = run_h2load(
                    load,
                    srv,
                    body,
                    token if side == "service" else None,
                    "warm-up",
                    size,
                    warmup_seconds=load.warmup,
                )
                n[side] = max(1000, int(w.rps * load.duration))
            s_runs: list[Run] = []
            b_runs: list[Run] = []
            for i in range(n_rounds):
                # Alternate which side goes first so drift does not favour one.
                order = [("service", service), ("bare", bare)]
                if i % 2:
                    order.reverse()
                for side, srv in order:
                    if svc_only and side == "bare":
                        continue
                    r = run_h2load(
                        load,
                        srv,
                        body,
                        token if side == "service" else None,
                        title,
                        size,
                        requests=n[side],
                    )
                    print(
                        f"   {side:8s} {r.rps:10,.0f} req/s  ({r.done:,} requests, "
                        f"{r.seconds:.1f}s, {r.cpu_us_per_req:,.0f} server CPU µs/req, "
                        f"loadavg {r.loadavg})",
                        flush=True,
                    )
                    (s_runs if side == "service" else b_runs).append(r)
                    runs.append(r)
            return s_runs, b_runs
        finally:
            service.stop()
            bare.stop()

    eq = await phase("1 process each", 1, 1, "WARNING", rounds)
    phases.append(("equal processes: service 1 vs bare 1", *eq))
    if args.workers > 1:
        mp = await phase(
            f"{args.workers} processes each", args.workers, args.workers, "WARNING", rounds
        )
        phases.append((f"equal processes: service {args.workers} vs bare {args.workers}", *mp))
        phases.append((f"multi-process: service {args.workers} vs bare 1", mp[0], eq[1]))
    info_svc, _ = await phase("1 process, INFO logging", 1, 1, "INFO", 1, svc_only=True)
    phases.append(("logging cost: service 1 at INFO vs bare 1", info_svc, eq[1]))
    elapsed = time.monotonic() - t0

    ratio_rows = [
        "| comparison | service req/s | bare req/s | ratio | CPU µs/req service / bare |",
        "|---|---|---|---:|---:|",
    ]
    verdict: list[str] = []
    for title, s, b in phases:
        row, ratio = ratio_line(title, s, b)
        ratio_rows.append(row)
        if not title.startswith("logging"):
            met = "met" if ratio >= 1.0 else "NOT met"
            verdict.append(f"- {title}: {ratio:.2f}× — target ≥ 1.0× {met}")
    print()
    print("\n".join(table(runs)))
    print()
    print("\n".join(ratio_rows))
    print("\n".join(verdict))
    print(f"\ntotal wall time {elapsed:.0f}s")

    if not args.quick:
        lines = [
            "# GetTemplate: full service vs bare grpc.aio handler",
            "",
            "Written by `bench/grpc_bench.py` (issue 2 §6). Target: the full service reaches",
            "at least 1.0× the bare handler's req/s on the same 2-core box.",
            "",
            "## Machine",
            "",
            *machine_info(admin_url),
            "",
            "## What each side ran",
            "",
            *[f"- **{k}**: {v}" for k, v in configs.items()],
            "",
            "Both: grpc.aio on uvloop, insecure h2c on 127.0.0.1, SO_REUSEPORT, psycopg 3",
            f"`AsyncConnectionPool(min_size={POOL_MIN}, max_size={POOL_MAX}, autocommit=True)`"
            " per process, the",
            "`get_template` SELECT from `sql/queries/templates.sql` with a dict row factory,",
            "the same `Template` message (checked byte-identical before each phase).",
            "The service additionally runs the full interceptor chain (request id + log line,",
            "error mapping, HS256 JWT verification with PyJWT, UUID validation, unit of work),",
            "health and reflection, and in its primary process the webhook sidecar (idle) and",
            "the background loops of `mktx_grpc.worker` (mostly asleep). The bare handler does",
            "no auth.",
            "",
            "## Load",
            "",
            f"h2load, 1 thread, {load.clients} connections × {load.streams} concurrent streams"
            f" ({load.clients * load.streams} in flight). Each phase starts both servers,",
            f"warms each side up untimed for {load.warmup} s (`-D {load.warmup}`), then alternates"
            " measured runs (service first in odd rounds, bare first in even ones) of",
            f"`-n N` requests, N = the side's warm-up rate × {load.duration} s.",
            "Every run is checked: no failed/errored requests, and DATA bytes per request equal",
            "to one length-prefixed Template (a gRPC error would carry none).",
            "",
            "```",
            *load.commands,
            "```",
            "",
            "with `$TOKEN` from `mint_token` (HS256, `MKTX_JWT_SECRET`), body = gRPC frame of",
            "`GetTemplateRequest{id}`.",
            "",
            "## All runs",
            "",
            *table(runs),
            "",
            "## Ratios (means of the runs above)",
            "",
            *ratio_rows,
            "",
            *verdict,
            "",
            f"Total bench wall time: {elapsed:.0f} s.",
            "",
        ]
        lines += NOTES
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(lines))
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


# ------------------------------------------------------------------ issue 14: defaults


CONTACT_METHOD = "/mktx.v1.ContactsService/GetContact"
RESULTS_DEFAULTS = ROOT / "bench" / "results" / "grpc.md"
#: The bench merchant's rate-limit override: the limiter runs on every call (one hit
#: and one window read per call, as at the default) but never refuses the load.
BENCH_RATE_LIMIT = 1_000_000_000


def seed_contact(db_url: str, merchant: uuid.UUID) -> uuid.UUID:
    """One contact with engagement to count (2 conversations, 8 messages, 2
    interactions), and the merchant's rate-limit override. Returns the contact id."""
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        account, contact = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            "INSERT INTO accounts (id, merchant_id, x_user_id, username, status, auth_method,"
            " access_token_enc) VALUES (%s, %s, '4242', 'benchshop', 'ACTIVE', 'OAUTH2', %s)",
            (account, merchant, b"\x01enc"),
        )
        conn.execute(
            "INSERT INTO contacts (id, merchant_id, account_id, x_user_id, username, display_name,"
            " tags, source, first_interaction_at, last_interaction_at, attributes)"
            " VALUES (%s, %s, %s, '777', 'ana', 'Ana Customer', %s, 'INBOUND_MESSAGE', %s, %s,"
            " %s)",
            (
                contact,
                merchant,
                account,
                ["vip", "spring"],
                base,
                base,
                Jsonb({"plan": "gold", "city": "Lisbon"}),
            ),
        )
        for c, messages in enumerate(
            (
                [("INBOUND", 0, "DELIVERED"), ("OUTBOUND", 10, "SENT"), ("INBOUND", 20, "READ")],
                [
                    ("OUTBOUND", 100, "READ"),
                    ("INBOUND", 101, "DELIVERED"),
                    ("OUTBOUND", 104, "DELIVERED"),
                    ("INBOUND", 110, "DELIVERED"),
                    ("OUTBOUND", 111, "FAILED"),
                ],
            )
        ):
            conv = uuid.uuid4()
            conn.execute(
                "INSERT INTO conversations (id, merchant_id, account_id, contact_id, status,"
                " message_count) VALUES (%s, %s, %s, %s, %s, %s)",
                (conv, merchant, account, contact, "OPEN" if c else "CLOSED", len(messages)),
            )
            for direction, minutes, state in messages:
                at = base + timedelta(minutes=minutes)
                conn.execute(
                    "INSERT INTO messages (merchant_id, conversation_id, direction, text,"
                    " delivery_state, sent_at, created_at) VALUES (%s, %s, %s, 'hi', %s, %s, %s)",
                    (merchant, conv, direction, state, at, at),
                )
        conn.execute(
            "INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at)"
            " VALUES (%s, %s, 'FOLLOW', %s), (%s, %s, 'MESSAGE_IN', %s)",
            (merchant, contact, base, merchant, contact, base + timedelta(days=3)),
        )
        conn.execute(
            "INSERT INTO merchant_settings (merchant_id, rate_limit_per_minute, rate_limit_burst,"
            " version) VALUES (%s, %s, 0, 1)",
            (merchant, BENCH_RATE_LIMIT),
        )
        conn.execute("VACUUM ANALYZE")
    return contact


@dataclass
class Rpc:
    name: str
    path: str
    body: Path
    size: int = 0


async def call_rpc(
    port: int, rpc: str, row_id: uuid.UUID, token: str | None
) -> tuple[bytes, dict[str, str]]:
    """One real gRPC call; the serialized answer and its trailing metadata."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        md = [("authorization", f"Bearer {token}")] if token else None
        if rpc == "GetTemplate":
            call = templates_pb2_grpc.TemplatesServiceStub(ch).GetTemplate(
                templates_pb2.GetTemplateRequest(id=str(row_id)), metadata=md, timeout=5
            )
        else:
            call = contacts_pb2_grpc.ContactsServiceStub(ch).GetContact(
                contacts_pb2.GetContactRequest(id=str(row_id)), metadata=md, timeout=5
            )
        resp = await call
        trailers = {k: v for k, v in (await call.trailing_metadata() or ()) if isinstance(v, str)}
        return resp.SerializeToString(), trailers


async def check_same(servers: list[Server], rpc: str, row_id: uuid.UUID, token: str) -> int:
    """Every side returns the identical message; each service side carries the
    rate-limit trailers and refuses a forged token. Returns the message size."""
    answers = {}
    for srv in servers:
        body, trailers = await call_rpc(
            srv.port, rpc, row_id, None if srv.name == "bare" else token
        )
        answers[srv.name] = body
        if srv.name != "bare":
            if "x-ratelimit-remaining" not in trailers:
                raise AssertionError(f"{srv.name}: no x-ratelimit-* trailers: {trailers}")
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            try:
                await call_rpc(srv.port, rpc, row_id, forged)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAUTHENTICATED:
                    raise AssertionError(f"forged token gave {exc.code()}") from None
            else:
                raise AssertionError("forged token was accepted")
    # Equal as messages and in size (a Struct's map entries may serialize in another
    # order, so the bytes need not be identical).
    cls = templates_pb2.Template if rpc == "GetTemplate" else contacts_pb2.Contact
    parsed = [cls.FromString(b) for b in answers.values()]
    sizes = {len(b) for b in answers.values()}
    if any(p != parsed[0] for p in parsed) or len(sizes) != 1 or not parsed[0].id:
        raise AssertionError(f"{rpc}: the sides returned different messages")
    if rpc == "GetContact":
        c = contacts_pb2.Contact.FromString(answers["bare"])
        e = c.engagement
        if (e.conversation_count, e.messages_sent, e.messages_received) != (2, 3, 4):
            raise AssertionError(f"unexpected engagement figures: {e}")
    return len(answers["bare"])


def percentiles(log_file: Path) -> tuple[float, float, int]:
    """(p50, p99) in ms and the count, from h2load's per-request log."""
    times = sorted(
        int(line.split("\t")[2]) / 1000
        for line in log_file.read_text().splitlines()
        if line.count("\t") >= 2
    )
    if not times:
        return float("nan"), float("nan"), 0

    def at(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))]

    return at(0.50), at(0.99), len(times)


@dataclass
class Latency:
    rpc: str
    side: str
    offered: float
    achieved: float
    p50: float
    p99: float
    count: int
    loadavg: str


async def defaults_main(args: argparse.Namespace) -> int:
    """Issue 14 §2: bare vs the service at its defaults (INFO logging, rate limiting and
    metrics on; coalescing off) and the service with coalescing on, one
    process each, sides rotating, for GetTemplate and GetContact; then p50/p99 of each
    side at half of the bare handler's peak."""
    admin_url = os.environ.get("DATABASE_URL", "").strip() or DEFAULT_ADMIN_URL
    t0 = time.monotonic()
    db_url, merchant, template_id = setup_database(admin_url)
    contact_id = seed_contact(db_url, merchant)
    token = mint_token(
        Settings(jwt_secret=JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=3600
    )
    tmp = Path(tempfile.mkdtemp(prefix="mktx-bench-"))
    rpcs = [
        Rpc("GetTemplate", METHOD, tmp / "get_template.bin"),
        Rpc("GetContact", CONTACT_METHOD, tmp / "get_contact.bin"),
    ]
    rpcs[0].body.write_bytes(
        grpc_frame(templates_pb2.GetTemplateRequest(id=str(template_id)).SerializeToString())
    )
    rpcs[1].body.write_bytes(
        grpc_frame(contacts_pb2.GetContactRequest(id=str(contact_id)).SerializeToString())
    )
    ids = {"GetTemplate": template_id, "GetContact": contact_id}
    load = Load(
        clients=args.clients, streams=args.streams, duration=args.duration, warmup=args.warmup
    )
    servers = [
        start_bare(db_url, merchant, 1, "uvloop", tmp),
        start_service(db_url, 1, "INFO", tmp, name="service"),
        start_service(
            db_url,
            1,
            "INFO",
            tmp,
            name="service + coalescing",
            extra_env={"MKTX_COALESCE_READS": "true"},
        ),
    ]
    runs: list[Run] = []
    latencies: list[Latency] = []
    peaks: dict[tuple[str, str], list[Run]] = {}
    try:
        for srv in servers:
            await wait_ready(srv, health=srv.name != "bare")
        for rpc in rpcs:
            rpc.size = await check_same(servers, rpc.name, ids[rpc.name], token)
            print(f"== {rpc.name}: every side returns the same {rpc.size}-byte message", flush=True)
            n: dict[str, int] = {}
            for srv in servers:
                w = run_h2load(
                    load,
                    srv,
                    rpc.body,
                    None if srv.name == "bare" else token,
                    "warm-up",
                    rpc.size,
                    warmup_seconds=load.warmup,
                    method=rpc.path,
                )
                n[srv.name] = max(1000, int(w.rps * load.duration))
            for i in range(args.rounds):
                order = servers[i % 3 :] + servers[: i % 3]  # rotate who goes first
                for srv in order:
                    r = run_h2load(
                        load,
                        srv,
                        rpc.body,
                        None if srv.name == "bare" else token,
                        f"{rpc.name} peak",
                        rpc.size,
                        requests=n[srv.name],
                        method=rpc.path,
                    )
                    print(
                        f"   {srv.name:24s} {r.rps:8,.0f} req/s  {r.cpu_us_per_req:5,.0f} "
                        f"server CPU µs/req  (loadavg {r.loadavg})",
                        flush=True,
                    )
                    runs.append(r)
                    peaks.setdefault((rpc.name, srv.name), []).append(r)
            bare_peak = statistics.mean(r.rps for r in peaks[(rpc.name, "bare")])
            offered = bare_peak / 2
            per_client = max(1.0, offered / load.clients)
            for srv in servers:
                log_file = tmp / f"lat-{rpc.name}-{srv.name.replace(' ', '_')}.tsv"
                r = run_h2load(
                    load,
                    srv,
                    rpc.body,
                    None if srv.name == "bare" else token,
                    f"{rpc.name} half-peak",
                    rpc.size,
                    requests=max(500, int(offered * args.latency_seconds)),
                    method=rpc.path,
                    rps=round(per_client, 1),
                    log_file=log_file,
                )
                p50, p99, count = percentiles(log_file)
                latencies.append(
                    Latency(rpc.name, srv.name, offered, r.rps, p50, p99, count, r.loadavg)
                )
                print(
                    f"   {srv.name:24s} at {offered:,.0f} req/s offered: p50 {p50:.2f} ms, "
                    f"p99 {p99:.2f} ms",
                    flush=True,
                )
    finally:
        for srv in servers:
            srv.stop()
    elapsed = time.monotonic() - t0
    lines = report_defaults(admin_url, servers, load, runs, peaks, latencies, rpcs, args, elapsed)
    print("\n".join(lines))
    if not args.quick:
        RESULTS_DEFAULTS.write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS_DEFAULTS.relative_to(ROOT)}")
    return 0


def report_defaults(
    admin_url: str,
    servers: list[Server],
    load: Load,
    runs: list[Run],
    peaks: dict[tuple[str, str], list[Run]],
    latencies: list[Latency],
    rpcs: list[Rpc],
    args: argparse.Namespace,
    elapsed: float,
) -> list[str]:
    ratio_rows = [
        "| RPC | side | req/s per run | mean req/s | vs bare | server CPU µs/req |",
        "|---|---|---|---:|---:|---:|",
    ]
    verdict = []
    for rpc in rpcs:
        bare = statistics.mean(r.rps for r in peaks[(rpc.name, "bare")])
        for srv in servers:
            rs = peaks[(rpc.name, srv.name)]
            mean = statistics.mean(r.rps for r in rs)
            cpu = statistics.mean(r.cpu_us_per_req for r in rs)
            ratio_rows.append(
                f"| {rpc.name} | {srv.name} | {', '.join(f'{r.rps:,.0f}' for r in rs)} | "
                f"{mean:,.0f} | **{mean / bare:.2f}×** | {cpu:,.0f} |"
            )
        svc = statistics.mean(r.rps for r in peaks[(rpc.name, "service")])
        on = statistics.mean(r.rps for r in peaks[(rpc.name, "service + coalescing")])
        verdict.append(
            f"- {rpc.name}: service at its defaults {svc / bare:.2f}× the bare handler "
            f"(target ≥ 1.0× {'met' if svc / bare >= 1.0 else 'NOT met'}); with "
            f"coalescing {on / bare:.2f}×; coalescing gives {on / svc:.2f}× "
            f"(worth turning on by default at ≥ 1.3×)"
        )
    lat_rows = [
        "| RPC | side | offered req/s | achieved req/s | p50 ms | p99 ms | requests | loadavg |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for lt in latencies:
        lat_rows.append(
            f"| {lt.rpc} | {lt.side} | {lt.offered:,.0f} | {lt.achieved:,.0f} | {lt.p50:.2f} | "
            f"{lt.p99:.2f} | {lt.count:,} | {lt.loadavg} |"
        )
    return [
        "# The service at its defaults vs a bare grpc.aio handler (issue 14 §2)",
        "",
        "Written by `bench/grpc_bench.py --defaults`. One process per side, all three",
        "started together and measured in one run, the order of the sides rotating each",
        "round. Target: the service at its defaults (INFO logging, rate limiting and",
        "metrics on) ≥ 1.0× the bare handler at equal processes.",
        "",
        "## Machine",
        "",
        *machine_info(admin_url),
        "",
        "## Sides",
        "",
        *[f"- **{s.name}**: {s.describe}" for s in servers],
        "",
        "The service sides run `mktx-grpc serve` with every default: INFO logging (one",
        "JSON line per RPC), Prometheus metrics, the per-merchant rate limit (in memory;",
        f"the bench merchant has an override of {BENCH_RATE_LIMIT:,}/min so the limiter",
        "counts every call without refusing the load), HS256 JWT auth, validation, unit",
        "of work, health, reflection, the webhook sidecar and the background loops. The",
        "bare handler runs the same SELECTs and builds the same message (byte-identical,",
        "checked before each RPC's runs), with nothing else.",
        "",
        "GetContact is the contact row plus its engagement figures (the `contact_engagement`",
        "query: 2 conversations, 8 messages, 2 interactions), two queries per call on both",
        "sides; coalescing batches the row read only.",
        "",
        "## Load",
        "",
        f"h2load, 1 thread, {load.clients} connections × {load.streams} streams; warm-up"
        f" {load.warmup} s per side, then {args.rounds} measured rounds of about"
        f" {load.duration} s per side (`-n` from the warm-up rate). Latency: each side",
        f"at half of the bare handler's mean peak (`--rps` per connection), about"
        f" {args.latency_seconds} s, p50/p99 from h2load's `--log-file`.",
        "",
        "```",
        *load.commands,
        "```",
        "",
        "## Peak throughput",
        "",
        *ratio_rows,
        "",
        *verdict,
        "",
        "## Latency at half of peak",
        "",
        *lat_rows,
        "",
        "## All runs",
        "",
        *table(runs),
        "",
        f"Total bench wall time: {elapsed:.0f} s.",
    ]


# ------------------------------------------------------------------ main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", "-c", type=int, default=16, help="h2load connections")
    p.add_argument("--streams", "-m", type=int, default=20, help="h2load streams/connection")
    p.add_argument(
        "--duration",
        type=int,
        default=10,
        help="target seconds per measured run (sets h2load -n from the warm-up rate)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed warm-up seconds per side at the start of each phase",
    )
    p.add_argument("--rounds", type=int, default=3, help="runs per side per phase")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes per side in the multi-process phase (1 = skip it)",
    )
    p.add_argument(
        "--defaults",
        action="store_true",
        help="issue 14: bare vs the service at its defaults (coalescing on and off), "
        "GetTemplate and GetContact, peak and p50/p99 at half peak; writes results/grpc.md",
    )
    p.add_argument(
        "--latency-seconds", type=int, default=5, help="--defaults: seconds per latency run"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="4 s runs, 1 round, no multi-process phase, no results file",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.rounds, args.workers = 4, 1, 1, 1
        args.latency_seconds = 3
    if args.defaults:
        return asyncio.run(defaults_main(args))
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
