"""Flow send steps vs campaign dispatch: DMs/s into the X sandbox (limits lifted),
measured in the same run with the same set-up (``dispatch_bench.setup``: a connected
account, N contacts that are sandbox users, a running BULK_DM campaign).

- ``campaign``: ``dispatch_bench.run`` as it is (the campaign dispatch figure);
- ``flow``: the same set-up, the campaign then cancelled in the database, and N
  executions of a published one-node flow (SEND_MESSAGE) due at once; ``mktx-grpc
  worker`` processes run the step runner, which queues each DM on the one-off ledger,
  and the ledger's sender sends them. Timed from the first SENT ledger row to the last;
  each contact must have exactly one DM at the sandbox.

Run:  .venv/bin/python bench/automation_send_bench.py [--contacts 2000] [--workers 1]
Writes bench/results/automation_send.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dispatch_bench as db

from mktx_grpc.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parents[1]

_worker_env = db.worker_env


def _env_without_metrics_port(*args, **kwargs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """dispatch_bench's worker environment, without the worker's /metrics listener
    (another worker on the shared box may hold its default port)."""
    env = _worker_env(*args, **kwargs)
    env["MKTX_WORKER_METRICS_PORT"] = "0"
    return env


db.worker_env = _env_without_metrics_port

FLOW = {
    "trigger": {"type": "MANUAL", "config": {}, "reentry": "EVERY_TIME", "reentry_cooldown_s": 0},
    "nodes": [
        {
            "id": "say",
            "type": "SEND_MESSAGE",
            "name": "",
            "config": {"text": "Hi {{display_name}}, BENCH is yours"},
            "position": {},
        }
    ],
    "connections": [{"from": "trigger", "to": "say", "branch": "default"}],
}


def worker_without_rollups() -> None:
    """``mktx-grpc worker`` without the analytics-rollups consumer's loop (to measure
    what that consumer's handling of the flow DMs' outbox events costs the sends)."""
    import mktx_grpc.worker as w
    from mktx_grpc.cli import main as cli_main

    at = w.LOOPS.index(w._refresh_post_metrics) + 1 + w.CONSUMERS.index(w.ANALYTICS_ROLLUPS)
    del w.LOOPS[at]
    raise SystemExit(cli_main(["worker"]))


def run_flow(n: int, workers: int, *, rollups: bool = True) -> dict[str, float | int]:
    config = SandboxConfig(rate_limits_enabled=False, echo_dm_to_webhook=False)
    with SandboxServer(config) as sandbox, tempfile.TemporaryDirectory() as tmp:
        url = db.fresh_database()
        settings = db.settings_for(url, sandbox, Path(tmp))
        campaign_id, owner_id = asyncio.run(db.setup(settings, sandbox, n))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE campaigns SET status = 'CANCELLED' WHERE id = %s", (campaign_id,))
            conn.execute("DELETE FROM campaign_recipients WHERE campaign_id = %s", (campaign_id,))
            merchant, account = conn.execute(
                "SELECT merchant_id, account_id FROM campaigns WHERE id = %s", (campaign_id,)
            ).fetchone()
            flow = conn.execute(
                "INSERT INTO flows (merchant_id, account_id, name, status, definition,"
                " trigger_type, published_version) VALUES (%s, %s, 'send', 'ACTIVE', %s,"
                " 'MANUAL', 1) RETURNING id",
                (merchant, account, json.dumps(FLOW)),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO flow_versions (merchant_id, flow_id, version, definition,"
                " trigger_type) VALUES (%s, %s, 1, %s, 'MANUAL')",
                (merchant, flow, json.dumps(FLOW)),
            )
            conn.execute(
                "INSERT INTO flow_executions (merchant_id, flow_id, flow_version, account_id,"
                " contact_id, trigger_key, status, current_node_id, due_at)"
                " SELECT %s, %s, 1, %s, id, 'bench', 'RUNNING', 'say', now() FROM contacts"
                " WHERE merchant_id = %s",
                (merchant, flow, account, merchant),
            )
        env = db.worker_env(settings, sandbox, Path(tmp))
        exe = Path(sys.executable).with_name("mktx-grpc")
        log = open(Path(tempfile.gettempdir()) / "mktx_automation_send_bench.log", "wb")
        cmd = [str(exe), "worker"] if rollups else [sys.executable, __file__, "--no-rollups-worker"]
        me = psutil.Process()
        cpu0 = (db._cpu([me]), db._postgres_cpu())
        procs = [subprocess.Popen(cmd, env=env, stdout=log, stderr=log) for _ in range(workers)]
        ps = [psutil.Process(p.pid) for p in procs]
        first_at = last_at = None
        started = time.perf_counter()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                while True:
                    sent = conn.execute(
                        "SELECT count(*) FROM outbound_dms WHERE flow_id = %s AND state = 'SENT'",
                        (flow,),
                    ).fetchone()[0]
                    now = time.perf_counter()
                    if sent and first_at is None:
                        first_at = now
                    if sent >= n:
                        last_at = now
                        break
                    if now - started > 600 or any(p.poll() is not None for p in procs):
                        raise RuntimeError(f"stuck at {sent}/{n}")
                    time.sleep(0.1)
            # As dispatch_bench: CPU seconds from the workers' start to the last SENT
            # row, of the workers, this process (the sandbox, mostly) and PostgreSQL.
            pg = db._postgres_cpu()
            cpu = (
                db._cpu(ps),
                db._cpu([me]) - cpu0[0],
                sum(t - cpu0[1].get(pid, 0.0) for pid, t in pg.items()),
            )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(20)
            log.close()
        with psycopg.connect(url) as conn:
            # How long the step runner took to queue every DM (ledger rows' creation).
            queue_s = conn.execute(
                "SELECT extract(epoch FROM max(created_at) - min(created_at)) FROM outbound_dms"
                " WHERE flow_id = %s",
                (flow,),
            ).fetchone()[0]
        per = Counter(d.recipient_id for d in sandbox.state.sent_dms(owner_id))
        assert len(per) == n and set(per.values()) == {1}, "duplicates or missing DMs"
        assert first_at is not None and last_at is not None
        return {
            "seconds": round(last_at - first_at, 2),
            "dms_per_s": round(n / (last_at - first_at)),
            "load_1m": round(os.getloadavg()[0], 2),
            "queued_in_s": round(float(queue_s), 2),
            "cpu_worker_s": round(cpu[0], 1),
            "cpu_sandbox_s": round(cpu[1], 1),
            "cpu_postgres_s": round(cpu[2], 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--no-rollups",
        action="store_true",
        help="also run flow sends with workers that leave out the analytics-rollups consumer",
    )
    ap.add_argument("--no-rollups-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.no_rollups_worker:
        worker_without_rollups()
    modes = ["campaign", "flow", "campaign", "flow"]
    if args.no_rollups:
        modes += ["flow (no rollups)", "flow (no rollups)"]
    rows = []
    try:
        for mode in modes:
            if mode == "campaign":
                r = db.run(args.contacts, args.workers)
                got = {
                    k: r[k]
                    for k in (
                        "seconds",
                        "dms_per_s",
                        "load_1m",
                        "cpu_worker_s",
                        "cpu_sandbox_s",
                        "cpu_postgres_s",
                    )
                }
            else:
                got = run_flow(args.contacts, args.workers, rollups=mode == "flow")
            line = (
                f"| {mode} | {args.contacts} | {args.workers} | {got['seconds']} |"
                f" {got['dms_per_s']} | {got.get('queued_in_s', '')} |"
                f" {got['cpu_worker_s']} / {got['cpu_postgres_s']} / {got['cpu_sandbox_s']} |"
                f" {got['load_1m']} |"
            )
            print(line, flush=True)
            rows.append(line)
    finally:
        db.drop_created()
    out = ROOT / "bench" / "results" / "automation_send.md"
    out.write_text(
        "# Flow send steps vs campaign dispatch (issue 9 §6)\n\n"
        f"`bench/automation_send_bench.py --contacts {args.contacts} --workers {args.workers}`:"
        " DMs/s into the sandbox with limits lifted, first SENT to last, the two modes"
        " alternated in one run; every contact got exactly one DM (checked).\n\n"
        "| mode | contacts | workers | seconds | DMs/s | flow: all DMs queued in (s) |"
        " CPU s: workers / PostgreSQL / sandbox | load after |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
