"""Real processes for the fault tests: a PostgreSQL of the test's own (which the test
may stop and restart; never the shared one) and ``mktx-grpc serve`` as a subprocess.
"""

from __future__ import annotations

import base64
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import free_port, free_ports

from mktx_grpc.core.auth import mint_token
from mktx_grpc.core.config import Settings

BIN = Path(sys.executable).parent
JWT_SECRET = "fault-tests-jwt-secret-0123456789abcdef"


def _pg_bin_dir() -> Path:
    """The machine's PostgreSQL binaries (the newest), else pgserver's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class ScratchPostgres:
    """A throw-away PostgreSQL cluster in a temporary directory on a free port, with
    trust authentication. Runs as the ``postgres`` system user when the test runs as
    root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = _pg_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mktx-fault-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / tool), *args]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            log = self.logfile.read_text()[-3000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{tool} {args} failed: {res.stdout}{res.stderr}\n{log}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", opts, "-w",
                  "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Served:
    """A running ``mktx-grpc serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    grpc_port: int
    webhook_port: int
    log_path: Path
    env: dict[str, str]
    merchant: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def token(self) -> str:
        return mint_token(Settings(jwt_secret=JWT_SECRET.encode()), self.merchant)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_serve(database_url: str, workdir: Path, **extra_env: str) -> Served:
    """Start ``mktx-grpc serve`` on free ports against ``database_url`` (built-in X
    sandbox, worker loops in-process, JSON logs at INFO) and return once it listens."""
    grpc_port, webhook_port, sandbox_port = free_ports(3)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MKTX_", "X_")) and k not in ("DATABASE_URL",)
    }
    env.update(
        DATABASE_URL=database_url,
        MKTX_DATA_DIR=str(workdir / "data"),
        MKTX_GRPC_PORT=str(grpc_port),
        MKTX_GRPC_HOST="127.0.0.1",
        MKTX_WEBHOOK_PORT=str(webhook_port),
        MKTX_WEBHOOK_HOST="127.0.0.1",
        MKTX_SANDBOX_PORT=str(sandbox_port),
        MKTX_JWT_SECRET=JWT_SECRET,
        MKTX_ENCRYPTION_KEY=base64.urlsafe_b64encode(bytes(range(32))).decode(),
        MKTX_LOG_LEVEL="INFO",
        # The tests drive one merchant at a steady rate well above the default limit.
        MKTX_RATE_LIMIT_PER_MINUTE="1000000",
    )
    env.update(extra_env)
    log_path = workdir / "serve.log"
    out = log_path.open("ab")
    proc = subprocess.Popen(
        [str(BIN / "mktx-grpc"), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    served = Served(proc, grpc_port, webhook_port, log_path, env)
    deadline = time.monotonic() + 90
    while not _serving(served.addr):
        if proc.poll() is not None or time.monotonic() > deadline:
            served.terminate(5)
            raise AssertionError(f"serve did not become healthy:\n{served.log_text()[-4000:]}")
        time.sleep(0.2)
    return served


def _serving(addr: str) -> bool:
    with grpc.insecure_channel(addr) as ch:
        try:
            res = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return res.status == health_pb2.HealthCheckResponse.SERVING


def start_worker(served: Served, workdir: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Start ``mktx-grpc worker`` beside ``served`` (same database and X sandbox) and
    return it, the port of its ``/healthz`` and its log, once that answers."""
    import httpx

    port = free_port()
    env = dict(served.env, MKTX_WORKER_METRICS_PORT=str(port))
    log_path = workdir / "worker.log"
    out = log_path.open("ab")
    proc = subprocess.Popen(
        [str(BIN / "mktx-grpc"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, port, log_path
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
