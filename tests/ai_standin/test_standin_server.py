"""The foreground command (``main``) and the threaded server's lifecycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import openai
import pytest
from helpers import free_port
from standin_fixtures import user

from mktx_grpc.ai_standin import AIStandinServer
from mktx_grpc.ai_standin.state import FaultRule


def test_main_serves_in_the_foreground_with_its_flags() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mktx_grpc.ai_standin import main; sys.exit(main(sys.argv[1:]))",
            "--port",
            str(port),
            "--api-key",
            "sk-cli-key",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        give_up = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/_standin/health").raise_for_status()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < give_up, "stand-in did not start"
                time.sleep(0.1)
        ok = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer sk-cli-key"})
        assert ok.status_code == 200
        wrong = httpx.get(f"{base}/v1/models", headers={"Authorization": "Bearer sk-standin-local"})
        assert wrong.status_code == 401
        faults = httpx.get(f"{base}/_standin/faults").json()["data"]
        assert [(f["kind"], f["latency_ms"]) for f in faults] == [("latency", 1.0)]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "sk-cli-key" not in out  # a key passed on the command line is not printed
    assert f"http://127.0.0.1:{port}/v1" in out


async def test_stop_releases_a_request_held_by_a_timeout_fault() -> None:
    standin = AIStandinServer().start()
    standin.state.config.hang_seconds = 60
    standin.state.add_fault(FaultRule(id="f", kind="timeout"))
    async with standin.client(timeout=30) as c:
        call = asyncio.ensure_future(
            c.chat.completions.create(model="gpt-4o-mini", messages=user("hi"))
        )
        while standin.state.stats()["in_flight"] == 0:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(standin.stop)
        with pytest.raises((openai.APIStatusError, openai.APIConnectionError)):
            await call
    assert standin.state.stats()["in_flight"] == 0


async def test_unknown_v1_route_is_an_openai_404(standin: AIStandinServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{standin.openai_base_url}/images/generations", json={})
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "invalid_request_error"
