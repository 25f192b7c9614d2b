"""Requests per second of the AI stand-in for a tiny chat completion (a measurement,
not a test: pytest does not collect this file).

    .venv/bin/python tests/ai_standin/measure_rps.py [--seconds 5] [--concurrency 16]

Runs the stand-in on its own thread (as tests use it) and drives it from this
process's event loop with raw httpx and with ``openai.AsyncOpenAI``, so the figure
includes the client's cost on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from mktx_grpc.ai_standin import AIStandinServer

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


async def drive(call: Callable[[], Awaitable[object]], seconds: float, concurrency: int) -> float:
    done = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            await call()
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.monotonic() - started)


async def main(seconds: float, concurrency: int) -> None:
    with AIStandinServer() as standin:
        headers = {"Authorization": f"Bearer {standin.api_key}"}
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(headers=headers, limits=limits) as http:
            url = f"{standin.openai_base_url}/chat/completions"

            async def raw() -> object:
                resp = await http.post(url, json=BODY)
                resp.raise_for_status()
                return resp

            await drive(raw, 0.5, concurrency)  # warm up
            print(f"httpx:  {await drive(raw, seconds, concurrency):7.0f} req/s")
        async with standin.client() as client:

            async def sdk() -> object:
                return await client.chat.completions.create(**BODY)  # type: ignore[call-overload]

            print(f"openai: {await drive(sdk, seconds, concurrency):7.0f} req/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
