"""What the pool's checkout check costs (issue 13 §1): borrow-and-return of a pooled
connection, then borrow + ``SELECT 1``, with no check, with mktx's check (a
``select()`` on the socket; a round trip only for a connection that is broken or has
input) and with psycopg_pool's own ``check_connection`` (a round trip every time).
The three pools are measured in alternation in one run, so the box's load moves them
alike; compare the ratios.

    .venv/bin/python bench/pool_check.py [--n 3000] [--rounds 3]

DATABASE_URL: any PostgreSQL (default the shared one's ``postgres`` database; the
benchmark runs ``SELECT 1`` only and creates nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from psycopg_pool import AsyncConnectionPool

from mktx_grpc.core.db import make_pool


async def _borrow(pool: AsyncConnectionPool, n: int, query: bool) -> float:
    start = time.perf_counter()
    for _ in range(n):
        async with pool.connection() as conn:
            if query:
                await conn.execute("SELECT 1")
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    kw = {"min_size": 1, "max_size": 1, "kwargs": {"autocommit": True}, "open": False}
    pools = {
        "no check": AsyncConnectionPool(url, **kw),  # type: ignore[arg-type]
        "mktx check (select)": make_pool(url, min_size=1, max_size=1, metrics=False),
        "psycopg_pool check_connection": AsyncConnectionPool(
            url,
            check=AsyncConnectionPool.check_connection,
            **kw,  # type: ignore[arg-type]
        ),
    }
    for p in pools.values():
        await p.open(wait=True)
    print(f"load average before: {os.getloadavg()}")
    try:
        for query in (False, True):
            results: dict[str, list[float]] = {name: [] for name in pools}
            for _ in range(args.rounds):
                for name, p in pools.items():
                    await _borrow(p, 200, query)  # warm
                    results[name].append(await _borrow(p, args.n, query))
            base = statistics.median(results["no check"])
            label = "borrow + SELECT 1" if query else "borrow and return"
            print(f"\n{label} (median of {args.rounds} x {args.n}, µs per borrow)")
            for name, vals in results.items():
                med = statistics.median(vals)
                print(f"  {name:32s} {med:8.1f} µs  ({med / base:.2f}x)")
    finally:
        for p in pools.values():
            await p.close()
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
