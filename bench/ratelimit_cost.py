"""What the per-merchant rate limit costs per call, in process (issue 14 §1).

    .venv/bin/python bench/ratelimit_cost.py [--redis redis://127.0.0.1:6379/0]

Times the interceptor's storage work for one call (``limits``' sliding window counter:
``hit`` then ``get_window_stats``) against the in-memory storage, with 1 and with
10,000 merchants active, and against Redis when ``--redis`` is given (one round trip
each, so it is mostly Redis latency). The figures are per call, on one core, with
the event loop doing nothing else; the end-to-end view is in grpc.md (the service at
its defaults, limiter included, against the bare handler).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from mktx_grpc.interceptors.ratelimit import KEY_PREFIX, make_storage


async def per_call(url: str, merchants: int, calls: int) -> float:
    limiter = SlidingWindowCounterRateLimiter(make_storage(url))
    item = RateLimitItemPerMinute(10**9)
    keys = [str(uuid.uuid4()) for _ in range(merchants)]
    for k in keys:
        await limiter.hit(item, KEY_PREFIX, k)
    start = time.perf_counter()
    for i in range(calls):
        k = keys[i % merchants]
        await limiter.hit(item, KEY_PREFIX, k)
        await limiter.get_window_stats(item, KEY_PREFIX, k)
    return (time.perf_counter() - start) / calls * 1e6


async def amain(args: argparse.Namespace, load: str) -> None:
    print(f"loadavg {load}, pid {os.getpid()}")
    for merchants in (1, 10_000):
        us = await per_call("", merchants, args.calls)
        print(f"memory, {merchants:>6,} merchants: {us:6.1f} µs per call")
    if args.redis:
        us = await per_call(args.redis, 1, max(1000, args.calls // 20))
        print(f"redis ({args.redis}), 1 merchant: {us:6.1f} µs per call")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--redis", default="")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    asyncio.run(amain(p.parse_args(), load))


if __name__ == "__main__":
    main()
