"""What the Prometheus metrics cost GetTemplate (issue 15 §4): ``mktx-grpc serve``
with metrics (the default) against the same service with ``MKTX_METRICS=false``
(no metrics stage in the interceptor chain, a plain connection pool).

    .venv/bin/python bench/metrics_cost.py            # writes bench/results/metrics_cost.md
    .venv/bin/python bench/metrics_cost.py --quick    # shorter runs, no results file

Reuses ``grpc_bench.py``'s setup, servers, checks and h2load runs (see its docstring:
needs ``h2load`` and ``DATABASE_URL``, an admin URL), on a database of its own
(``mktx_bench_metrics``). Both sides are the full production composition in
multiprocess metrics mode as ``serve`` always runs it; they alternate within each
round so drift on a shared box favours neither. Reports req/s and the server's CPU
µs per request for both, and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc_bench as gb

from mktx.v1 import templates_pb2
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings

RESULTS = gb.ROOT / "bench" / "results" / "metrics_cost.md"
gb.BENCH_DB = "mktx_bench_metrics"


class _Ctx:
    """Enough of a grpc.aio servicer context for the interceptors measured."""

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def time_remaining(self) -> None:
        return None

    def cancelled(self) -> bool:
        return False


async def stage_cost(n: int = 100_000) -> list[str]:
    """In-process, interleaved (so load on the box hits both alike): the chain's
    logging stage alone vs logging + metrics around a no-op handler; and one RPC's
    five metric updates through prometheus-client directly vs deferred. Runs in this
    process in multiprocess mode, as serve does."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mktx-mb-"))
    import logging

    from mktx_grpc.core import metrics as cm
    from mktx_grpc.interceptors import InterceptorChain, LoggingInterceptor, MetricsInterceptor

    logging.getLogger().setLevel(logging.WARNING)  # the log line itself is not measured

    async def handler(request: int, context: object) -> int:
        return request

    async def chain_us(stages: list[object]) -> float:
        call = InterceptorChain(stages).compose(handler, "/bench/Get")  # type: ignore[arg-type]
        ctx = _Ctx()
        t = time.perf_counter()
        for _ in range(n):
            await call(1, ctx)
        return (time.perf_counter() - t) / n * 1e6

    m = cm.get()

    def direct_us() -> float:
        flight = m.rpc_in_flight.labels("/bench/Direct")
        calls = m.rpc_calls.labels("/bench/Direct", "OK")
        hist = m.rpc_duration.labels("/bench/Direct", "OK")
        t = time.perf_counter()
        for _ in range(n):
            flight.inc()
            flight.dec()
            calls.inc()
            hist.observe(0.0012)
            m.pool_wait.observe(0.00005)
        return (time.perf_counter() - t) / n * 1e6

    def deferred_us() -> float:
        flight = cm.DeferredGauge(m.rpc_in_flight.labels("/bench/Deferred"))
        calls = cm.DeferredCounter(m.rpc_calls.labels("/bench/Deferred", "OK"))
        hist = cm.DeferredHistogram(m.rpc_duration.labels("/bench/Deferred", "OK"))
        wait = cm.DeferredHistogram(m.pool_wait)
        t = time.perf_counter()
        for i in range(n):
            flight.value += 1
            flight.value -= 1
            calls.inc()
            hist.observe(0.0012)
            wait.observe(0.00005)
            if i % 1000 == 0:
                cm.flush_all()
        cm.flush_all()
        return (time.perf_counter() - t) / n * 1e6

    rows = []
    for i in range(3):
        base = await chain_us([LoggingInterceptor()])
        both = await chain_us([LoggingInterceptor(), MetricsInterceptor()])
        direct, deferred = direct_us(), deferred_us()
        rows.append(
            f"| {i + 1} | {base:.1f} | {both:.1f} | **{both - base:.1f}** | {direct:.1f} | "
            f"{deferred:.1f} | {' '.join(_loadavg())} |"
        )
        print(rows[-1], flush=True)
    return rows


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3]


def start(db_url: str, workers: int, tmp: Path, metrics: bool) -> gb.Server:
    before = os.environ.get("MKTX_METRICS")
    os.environ["MKTX_METRICS"] = "true" if metrics else "false"
    try:
        server = gb.start_service(db_url, workers, "INFO", tmp)
    finally:
        if before is None:
            os.environ.pop("MKTX_METRICS", None)
        else:
            os.environ["MKTX_METRICS"] = before
    server.name = "metrics" if metrics else "no-metrics"
    server.describe += f", MKTX_METRICS={'true' if metrics else 'false'}"
    return server


async def amain(args: argparse.Namespace) -> int:
    admin_url = os.environ.get("DATABASE_URL", "").strip() or gb.DEFAULT_ADMIN_URL
    t0 = time.monotonic()
    db_url, merchant, template_id = gb.setup_database(admin_url)
    # The merchant's rate-limit override (the limiter still runs on every call), as
    # grpc_bench --defaults does: at the default 100/min the load would be refused.
    gb.seed_contact(db_url, merchant)
    token = mint_token(
        Settings(jwt_secret=gb.JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=3600
    )
    tmp = Path(tempfile.mkdtemp(prefix="mktx-metrics-bench-"))
    body = tmp / "get_template.bin"
    body.write_bytes(
        gb.grpc_frame(templates_pb2.GetTemplateRequest(id=str(template_id)).SerializeToString())
    )
    load = gb.Load(
        clients=args.clients, streams=args.streams, duration=args.duration, warmup=args.warmup
    )
    uptime_before = _loadavg()
    # --aa: both sides without metrics, to see the bench's own noise and bias.
    with_m = start(db_url, args.workers, tmp, not args.aa)
    with_m.name = "metrics"
    without = start(db_url, args.workers, tmp, False)
    runs: dict[str, list[gb.Run]] = {"metrics": [], "no-metrics": []}
    try:
        for srv in (with_m, without):
            await gb.wait_ready(srv, health=True)
        size = len(await gb.get_template(with_m.port, template_id, token))
        if await gb.get_template(without.port, template_id, token) != await gb.get_template(
            with_m.port, template_id, token
        ):
            raise AssertionError("the two sides return different templates")
        n: dict[str, int] = {}
        for srv in (with_m, without):
            w = gb.run_h2load(load, srv, body, token, "warm-up", size, warmup_seconds=load.warmup)
            n[srv.name] = max(1000, int(w.rps * load.duration))
        requests = min(n.values())
        for i in range(args.rounds):
            order = [with_m, without] if i % 2 == 0 else [without, with_m]
            for srv in order:
                r = gb.run_h2load(load, srv, body, token, f"round {i + 1}", size, requests=requests)
                runs[srv.name].append(r)
                print(
                    f"{srv.name:>10} round {i + 1}: {r.rps:8.0f} req/s, "
                    f"{r.cpu_us_per_req:6.0f} CPU µs/req (load {r.loadavg})",
                    flush=True,
                )
    finally:
        with_m.stop()
        without.stop()
    m_rps = statistics.median(r.rps for r in runs["metrics"])
    n_rps = statistics.median(r.rps for r in runs["no-metrics"])
    m_cpu = statistics.median(r.cpu_us_per_req for r in runs["metrics"])
    n_cpu = statistics.median(r.cpu_us_per_req for r in runs["no-metrics"])
    summary = (
        f"median req/s with metrics / without: {m_rps:.0f} / {n_rps:.0f} = {m_rps / n_rps:.3f}; "
        f"median CPU µs/request: {m_cpu:.0f} / {n_cpu:.0f} = {m_cpu / n_cpu:.3f}"
    )
    print(summary)
    if args.quick or args.aa:
        return 0
    stage_rows = await stage_cost()
    lines = [
        "# Metrics cost on GetTemplate",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/metrics_cost.py` "
        f"({time.monotonic() - t0:.0f} s). The box is shared with other engineers' work: "
        f"load average before the run {' '.join(uptime_before)} on 2 cores, and per run "
        "below. Compare the ratio, measured within one run with the sides alternating, "
        "not the absolute figures.",
        "",
        f"- with metrics: {with_m.describe}",
        f"- without: {without.describe}",
        f"- load: h2load `-c {load.clients} -m {load.streams}`, {requests} requests per run, "
        f"{args.rounds} rounds",
        "",
        f"**{summary}.**",
        "",
        "| round | side | req/s | server CPU µs/request | load average |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name in ("metrics", "no-metrics"):
        for r in runs[name]:
            lines.append(
                f"| {r.label} | {name} | {r.rps:.0f} | {r.cpu_us_per_req:.0f} | {r.loadavg} |"
            )
    lines += [
        "",
        "## The stage itself, in-process",
        "",
        "End to end, a loaded box cannot resolve a few per cent (`--aa` runs both sides "
        "without metrics to show the noise). So the metrics stage is also timed in one "
        "process, "
        "interleaved with its baseline (`stage_cost`): the chain's logging stage alone "
        "vs logging + metrics around a no-op handler (µs per call), and one RPC's five "
        "metric updates (in-flight up and down, a call, its latency, a pool wait) "
        "through prometheus-client's multiprocess values directly vs the deferred "
        "counts the service uses.",
        "",
        "| run | logging only | logging + metrics | metrics stage | updates, direct | "
        "updates, deferred | load average |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *stage_rows,
        "",
        "h2load commands:",
        "",
        *[f"    {c}" for c in load.commands],
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, no results file")
    p.add_argument("--aa", action="store_true", help="both sides without metrics (noise check)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
