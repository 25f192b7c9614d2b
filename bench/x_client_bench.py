"""Measure X client throughput against the local sandbox, in one process.

Run:  .venv/bin/python bench/x_client_bench.py [--seconds 5] [--concurrency 16]
Writes bench/results/x_client.md. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from mktx_grpc.sandbox import SandboxConfig, SandboxServer
from mktx_grpc.x import OAuth1Credentials, OAuth2Credentials, UserContext, XClient, new_pkce


async def _run(
    seconds: float, concurrency: int, op: Callable[[], Awaitable[object]]
) -> tuple[int, float]:
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await op()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - started


async def main(seconds: float, concurrency: int) -> list[tuple[str, int, float]]:
    config = SandboxConfig(rate_limits_enabled=False, echo_dm_to_webhook=False)
    results = []
    with SandboxServer(config) as sandbox:
        merchant, customer = (uid for uid, _, _ in config.seed_users)
        async with XClient(sandbox.x_config()) as x:
            rt = await x.oauth1_request_token("https://bench.example/cb")
            async with httpx.AsyncClient() as browser:
                loc = (
                    await browser.get(x.oauth1_authorize_url(rt) + f"&sandbox_user_id={merchant}")
                ).headers["location"]
            at = await x.oauth1_access_token(rt, httpx.URL(loc).params["oauth_verifier"])
            o1: UserContext = x.as_user(OAuth1Credentials(at.token, at.token_secret))
            pkce = new_pkce()
            url = x.oauth2_authorize_url(
                redirect_uri="https://b/cb",
                scopes=["users.read", "dm.write"],
                state="s",
                code_challenge=pkce.challenge,
            )
            async with httpx.AsyncClient() as browser:
                loc = (await browser.get(url + f"&sandbox_user_id={merchant}")).headers["location"]
            tok = await x.oauth2_exchange_code(
                code=httpx.URL(loc).params["code"],
                redirect_uri="https://b/cb",
                code_verifier=pkce.verifier,
            )
            o2 = x.as_user(OAuth2Credentials(tok.access_token))
            cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("users/me, OAuth 1.0a signed", o1.me),
                ("users/me, OAuth 2.0 bearer", o2.me),
                ("send DM, OAuth 1.0a, limits lifted", lambda: o1.send_dm(customer, text="bench")),
            ]
            for name, op in cases:
                await _run(0.5, concurrency, op)  # warm-up
                n, elapsed = await _run(seconds, concurrency, op)
                results.append((name, n, elapsed))
                print(f"{name}: {n / elapsed:.0f} calls/s")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    res = asyncio.run(main(args.seconds, args.concurrency))
    lines = [
        "# X client throughput against the local sandbox",
        "",
        "Client and sandbox share one process (sandbox on its own thread and event loop),",
        "so these figures bound the client's overhead (signing, retries wrapper, JSON) and",
        "the sandbox's, not X's. Real X calls are dominated by network latency and X's limits.",
        "",
        "Reproduce: `.venv/bin/python bench/x_client_bench.py"
        f" --seconds {args.seconds:g} --concurrency {args.concurrency}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}, recorded {time.strftime('%Y-%m-%d')}.",
        "",
        "| call | calls | seconds | calls/s |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {n} | {elapsed:.1f} | {n / elapsed:.0f} |" for name, n, elapsed in res],
        "",
    ]
    (Path(__file__).parent / "results" / "x_client.md").write_text("\n".join(lines))
