"""Instructions per RPC: the service at its defaults against the bare handler, counted
by valgrind's callgrind (issue 14 §2).

    .venv/bin/python bench/instructions.py               # writes bench/results/instructions.md
    .venv/bin/python bench/instructions.py --requests 300 --quick   # no results file

Wall-clock figures on this 2-core box move by 10-30 % from one run to the next with
whatever else runs (``bench/results/grpc.md``), which hides changes of a few per cent.
Instruction counts do not move with load. Each side runs in its own process under
``valgrind --tool=callgrind`` exactly as ``grpc_bench.py --defaults`` starts it (same
commands, same environment: the service with INFO logging, rate limiting, metrics, the
sidecar and the background loops; the bare handler with the same SELECTs), counting
off. After a warm-up, counting is switched on (``callgrind_control -i on``) for
``--requests`` calls from h2load (4 connections, 4 streams), then for an idle window
of the same length with no calls (the service's background loops and probes run all
the time, and under valgrind a call takes ~50x longer, so their share per call would
be ~50x what it is at speed). Reported per call: instructions in the process, all
threads, with and without the idle window's count taken off, and split by the library
they ran in (the Python interpreter, grpc, protobuf, libpq, uvloop, ...).

Needs ``valgrind`` (with callgrind_control and callgrind_annotate), ``h2load`` and a
PostgreSQL admin URL in ``DATABASE_URL`` (default as in grpc_bench.py). Uses its own
throwaway database ``mktx_bench_instructions``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc_bench as gb

from mktx.v1 import contacts_pb2, templates_pb2
from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings

gb.BENCH_DB = "mktx_bench_instructions"
RESULTS = gb.ROOT / "bench" / "results" / "instructions.md"

#: Libraries grouped for the split (by the file name callgrind reports).
GROUPS = [
    ("Python interpreter", re.compile(r"^libpython")),
    ("grpc (cygrpc)", re.compile(r"^cygrpc")),
    ("protobuf (upb)", re.compile(r"^_message")),
    ("libc", re.compile(r"^libc\.so")),
    ("uvloop", re.compile(r"^loop\.cpython")),
    ("libpq + psycopg", re.compile(r"^(libpq|_psycopg|pq\.cpython)")),
    ("orjson", re.compile(r"^orjson")),
]


@dataclass
class Count:
    total: int
    by_group: dict[str, int]


def annotate(out_file: Path) -> Count:
    """Self instructions of every function in a callgrind dump, summed by library."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = 0
    m = re.search(r"^\s*([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text, re.M)
    if m:
        total = int(m.group(1).replace(",", ""))
    groups: dict[str, int] = defaultdict(int)
    for line in text.split("file:function", 1)[-1].splitlines():
        row = re.match(r"^\s*([\d,]+) \(.*\)\s+.*\[([^\]]*)\]\s*$", line)
        if not row:
            continue
        lib = row.group(2).rsplit("/", 1)[-1]
        name = next((g for g, pat in GROUPS if pat.search(lib)), "other")
        groups[name] += int(row.group(1).replace(",", ""))
    return Count(total, dict(groups))


def control(pid: int, *args: str) -> None:
    subprocess.run(
        ["callgrind_control", *args, str(pid)],
        capture_output=True,
        check=True,
        timeout=120,
    )


def dumps(prefix: Path) -> set[Path]:
    return set(prefix.parent.glob(prefix.name + ".*"))


def h2load(port: int, body: Path, token: str | None, method: str, n: int) -> str:
    cmd = ["h2load", "-c", "4", "-m", "4", "-n", str(n), "-d", str(body)]
    cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{method}"], capture_output=True, text=True, timeout=1800
    ).stdout
    req = gb._REQUESTS.search(out)
    if not req or int(req.group(4)) != n:
        raise RuntimeError(f"h2load: not every call succeeded:\n{out}")
    return out


async def measure(
    side: str,
    rpc: gb.Rpc,
    db_url: str,
    merchant: object,
    token: str,
    tmp: Path,
    requests: int,
) -> tuple[Count, Count, float]:
    """(loaded, idle, loaded seconds) counts for one side and one RPC."""
    prefix = tmp / f"cg-{side}-{rpc.name}"
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={prefix}.%p",
    ]
    if side == "bare":
        server = gb.start_bare(db_url, merchant, 1, "uvloop", tmp, wrapper=wrapper)  # type: ignore[arg-type]
    else:
        server = gb.start_service(db_url, 1, "INFO", tmp, wrapper=wrapper)
    try:
        await gb.wait_ready(server, health=side != "bare", within=600)
        auth = None if side == "bare" else token
        h2load(server.port, rpc.body, auth, rpc.path, max(100, requests // 3))  # warm-up
        await asyncio.sleep(2)
        pid = server.proc.pid
        control(pid, "-z")  # zero whatever counted so far (nothing: counting is off)
        control(pid, "-i", "on")
        t0 = time.monotonic()
        h2load(server.port, rpc.body, auth, rpc.path, requests)
        seconds = time.monotonic() - t0
        control(pid, "-i", "off")
        before = dumps(prefix)
        control(pid, "-d")
        loaded_file = _new_dump(prefix, before)
        control(pid, "-i", "on")
        await asyncio.sleep(seconds)
        control(pid, "-i", "off")
        before = dumps(prefix)
        control(pid, "-d")
        idle_file = _new_dump(prefix, before)
        return annotate(loaded_file), annotate(idle_file), seconds
    finally:
        server.stop()


def _new_dump(prefix: Path, before: set[Path]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [p for p in dumps(prefix) - before if re.search(r"\.\d+\.\d+$", p.name)]
        if new:
            time.sleep(1)  # let callgrind finish writing
            return max(new, key=lambda p: p.stat().st_mtime)
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump appeared for {prefix}")


async def amain(args: argparse.Namespace) -> int:
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate", "h2load"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    admin_url = os.environ.get("DATABASE_URL", "").strip() or gb.DEFAULT_ADMIN_URL
    t_start = time.monotonic()
    db_url, merchant, template_id = gb.setup_database(admin_url)
    contact_id = gb.seed_contact(db_url, merchant)
    token = mint_token(
        Settings(jwt_secret=gb.JWT_SECRET.encode()), merchant, user_id="bench", ttl_seconds=36000
    )
    tmp = Path(tempfile.mkdtemp(prefix="mktx-instr-"))
    rpcs = [
        gb.Rpc("GetTemplate", gb.METHOD, tmp / "get_template.bin"),
        gb.Rpc("GetContact", gb.CONTACT_METHOD, tmp / "get_contact.bin"),
    ]
    rpcs[0].body.write_bytes(
        gb.grpc_frame(templates_pb2.GetTemplateRequest(id=str(template_id)).SerializeToString())
    )
    rpcs[1].body.write_bytes(
        gb.grpc_frame(contacts_pb2.GetContactRequest(id=str(contact_id)).SerializeToString())
    )
    wanted = [r for r in rpcs if r.name in args.rpc]
    rows: list[str] = []
    summary: list[str] = []
    for rpc in wanted:
        per: dict[str, tuple[Count, Count, float]] = {}
        for side in ("bare", "service"):
            per[side] = await measure(side, rpc, db_url, merchant, token, tmp, args.requests)
            loaded, idle, secs = per[side]
            print(
                f"{rpc.name} {side}: {loaded.total / args.requests:,.0f} instructions/call, "
                f"idle {idle.total / secs:,.0f}/s over {secs:.0f} s",
                flush=True,
            )
        n = args.requests
        raw = {s: per[s][0].total / n for s in per}
        net = {s: (per[s][0].total - per[s][1].total) / n for s in per}
        summary.append(
            f"- **{rpc.name}**: service {raw['service']:,.0f} vs bare {raw['bare']:,.0f} "
            f"instructions per call = **{raw['service'] / raw['bare']:.2f}×**; without the "
            f"idle window's count {net['service']:,.0f} vs {net['bare']:,.0f} = "
            f"**{net['service'] / net['bare']:.2f}×**"
        )
        groups = [g for g, _ in GROUPS] + ["other"]
        for g in groups:
            b, s = (
                (per[side][0].by_group.get(g, 0) - per[side][1].by_group.get(g, 0)) / n
                for side in ("bare", "service")
            )
            rows.append(f"| {rpc.name} | {g} | {b:,.0f} | {s:,.0f} | {s - b:+,.0f} |")
    for line in summary:
        print(line)
    if args.quick:
        return 0
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Instructions per call: the service at its defaults vs the bare handler",
        "",
        f"Written by `bench/instructions.py --requests {args.requests}` on {when} "
        f"({time.monotonic() - t_start:.0f} s). Counted by valgrind's callgrind in the "
        "server process (all threads), so the figures do not move with the load on the "
        "box; see the module docstring for the method. Sides as in `grpc_bench.py "
        "--defaults` (one process each; the service at its defaults: INFO logging, rate "
        "limiting, metrics, sidecar, background loops). h2load: 4 connections × 4 streams.",
        "",
        *summary,
        "",
        "Per call by library, the idle window's count taken off (libraries under 0.01 % "
        "of a window's total are left out of the split, so columns may not sum exactly "
        "to the totals):",
        "",
        "| RPC | library | bare | service | difference |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS.relative_to(gb.ROOT)}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000, help="counted calls per side")
    p.add_argument(
        "--rpc", nargs="+", default=["GetTemplate", "GetContact"], help="RPCs to measure"
    )
    p.add_argument("--quick", action="store_true", help="print only, no results file")
    return asyncio.run(amain(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
