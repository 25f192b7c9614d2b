"""The README's walk-through, run for real (issue 15 §3, §5): ``mktx-grpc serve`` in
a subprocess with nothing configured but ports and a database, then every ``sh``
block of the README's "Walk-through" section pasted into bash exactly as written
(only the three ports changed), then a restart of ``serve`` that keeps the demo
account working.

The database is this test's fresh clone (``DATABASE_URL``) rather than the embedded
server, which ``tests/test_quickstart.py`` covers: it changes no command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import free_ports

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECTION = "## Walk-through: the first hour"
MERCHANT_ACCOUNT = "1500000000000000001"
CUSTOMER = "1500000000000000002"
FOLLOWER = "1500000000000000004"  # the sandbox user the walk-through creates to follow
WELCOME = "Hi Lena, thanks for following!"  # the welcome flow's DM to "Lena Park"


def walkthrough_blocks() -> list[str]:
    """The ``sh`` code blocks of the README's walk-through section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def readme_examples() -> list[str]:
    """The README's ``sh`` blocks after the walk-through section (also those indented
    in a list), in order: examples meant to be pasted into the walk-through's shell,
    with its ``$TOKEN`` and ``$ACCOUNT``. The quick start's install lines come before
    the walk-through and are not among them."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    rest = text[text.index("\n## ", start + len(SECTION)) :]
    blocks = []
    for m in re.finditer(r"^( *)```sh\n(.*?)^\1```", rest, flags=re.S | re.M):
        indent = m.group(1)
        blocks.append("\n".join(line.removeprefix(indent) for line in m.group(2).splitlines()))
    return blocks


EXAMPLES = "--- the README examples"


def printed_objects(out: str) -> list[str]:
    """The pretty-printed JSON objects in ``out`` (grpcurl's: ``{`` and ``}`` alone
    on a line at column 0), in order."""
    return re.findall(r"^\{\n.*?^\}$", out, flags=re.S | re.M)


def test_the_walkthrough_uses_the_documented_ports():
    script = "\n".join(walkthrough_blocks())
    assert "localhost:50051" in script and "localhost:5081" in script
    assert "localhost:5000/" in script
    assert ".venv/bin/" not in script.split("\n", 1)[1]  # after activation, plain names


def test_localize_does_not_rewrite_a_port_it_already_rewrote(tmp_path):
    # The CI failure of stop 19: gRPC got port 50811, whose "localhost:5081" the
    # sandbox replacement then matched, giving "localhost:604131".
    s = Serve(tmp_path, "postgresql://unused")
    s.grpc, s.sandbox, s.webhook = 50811, 60413, 50001
    script = "a localhost:50051 b localhost:5081/_sandbox c localhost:5000/webhooks/x"
    assert s.localize(script) == (
        "a localhost:50811 b localhost:60413/_sandbox c localhost:50001/webhooks/x"
    )
    s.grpc, s.sandbox, s.webhook = 5000, 50051, 5081
    assert s.localize(script) == (
        "a localhost:5000 b localhost:50051/_sandbox c localhost:5081/webhooks/x"
    )


class Serve:
    """``mktx-grpc serve`` as the README starts it, on ports of the test's own."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.grpc, self.webhook, self.sandbox = free_ports(3)
        self.data = tmp_path / "data"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MKTX_", "X_", "PROMETHEUS")) and k != "DATABASE_URL"
        }
        self.env.update(
            DATABASE_URL=database_url,
            MKTX_DATA_DIR=str(self.data),
            MKTX_GRPC_PORT=str(self.grpc),
            MKTX_WEBHOOK_PORT=str(self.webhook),
            MKTX_SANDBOX_PORT=str(self.sandbox),
            MKTX_SHUTDOWN_GRACE="2",
        )
        self.tmp = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> str:
        self.runs += 1
        self.out = self.tmp / f"serve{self.runs}.out"
        self.err = self.tmp / f"serve{self.runs}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [str(BIN / "mktx-grpc"), "serve"], env=self.env, stdout=out, stderr=err
            )
        deadline = time.monotonic() + 120
        while "mktx-grpc serve: ready" not in self.out.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("serve did not start:\n" + self.err.read_text()[-4000:])
            time.sleep(0.3)
        return self.out.read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(60) == 0, self.err.read_text()[-4000:]
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise

    def localize(self, script: str) -> str:
        # One pass over the README's ports: replacing them one after another
        # rewrote an already-localized port (grpc on 50811 became the sandbox's
        # port + "1" when the next replacement matched its "localhost:5081").
        ports = {"50051": self.grpc, "5081": self.sandbox, "5000": self.webhook}
        return re.sub(
            r"localhost:(50051|5081|5000)\b",
            lambda m: f"localhost:{ports[m.group(1)]}",
            script,
        )

    def bash(self, script: str, timeout: float = 240) -> str:
        """Run ``script`` in bash from the repository root (where the README's
        commands run), stopping at the first failing command."""
        res = subprocess.run(
            ["bash", "-e", "-c", self.localize(script)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert res.returncode == 0, f"stdout:\n{res.stdout[-4000:]}\nstderr:\n{res.stderr[-4000:]}"
        return res.stdout


@pytest.fixture
def serve(tmp_path, database_url):
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.fail("the walk-through activates ./.venv: create it as the quick start does")
    s = Serve(tmp_path, database_url)
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written_and_survives_a_restart(serve):
    banner = serve.start()
    assert f"localhost:{serve.grpc}" in banner and f"127.0.0.1:{serve.sandbox}" in banner
    script = "\n".join(walkthrough_blocks())
    # Then the README's other examples, pasted into the same shell.
    examples = readme_examples()
    assert len(examples) >= 2  # publishing, automation
    both = serve.bash(script + f"\necho '{EXAMPLES}'\n" + "\n".join(examples))
    out, examples_out = both.split(f"{EXAMPLES}\n")

    # What a reader sees at each step.
    assert "The contact field:" in out  # describe shows the proto comments
    assert "ACCOUNT_STATUS_ACTIVE" in out and '"username": "sandbox_merchant"' in out
    assert '"subscribed": true' in out  # registered as it connected
    assert '"text": "Hi! Do you ship to Canada?"' in out
    assert '"text":"Yes! We ship to Canada in 3-5 days."' in out  # as the sandbox got it
    assert '"totalCount": "1"' in out  # the segment
    assert "Hi there, shipping to Canada is free this week with MAPLE!" in out
    assert '"sent": "1"' in out and "METRICS_GRANULARITY" in out  # the campaign's metrics
    assert re.search(r'^mktx_grpc_calls_total\{code="OK",method="/mktx\.v1\.', out, re.M)
    sandbox = f"http://127.0.0.1:{serve.sandbox}"
    campaign_dms = httpx.get(f"{sandbox}/_sandbox/dms", params={"sender_id": MERCHANT_ACCOUNT})
    texts = [d["text"] for d in campaign_dms.json()["data"]]
    # The recipient's first name (from "Sandbox Customer"), the campaign's variable.
    assert "Hi Sandbox, shipping to Canada is free this week with MAPLE!" in texts

    # The welcome flow: active, started by the injected follow, its one send step
    # done and the execution COMPLETED; X got the DM once, addressed to the follower.
    assert '"status": "FLOW_STATUS_ACTIVE"' in out and '"publishedVersion": "1"' in out
    assert f'"text":"{WELCOME}"' in out  # the block's read-back at the sandbox
    # ListFlowExecutions (one execution, no step log), then GetFlowExecution.
    listed, execution = (json.loads(o) for o in printed_objects(out) if '"flowVersion"' in o)
    [summary] = listed["executions"]
    assert summary["id"] == execution["id"] and "steps" not in summary
    assert summary["status"] == "FLOW_EXECUTION_STATUS_COMPLETED"
    assert execution["status"] == "FLOW_EXECUTION_STATUS_COMPLETED"
    assert execution["triggerEvent"]["event_type"] == "contact.followed"
    [step] = execution["steps"]
    assert (step["nodeId"], step["status"]) == ("hello", "FLOW_STEP_STATUS_COMPLETED")
    assert step["output"]["text"] == WELCOME and step["output"]["outbound_id"]  # on the ledger
    welcomes = [d for d in campaign_dms.json()["data"] if d["text"] == WELCOME]
    assert [d["recipient_id"] for d in welcomes] == [FOLLOWER]

    # The examples: a post scheduled for tomorrow, a second flow saved as a draft, this
    # year's first-response chart (the read_mask's two fields of its 12 buckets only).
    post, flow, chart = (json.loads(o) for o in printed_objects(examples_out))
    assert post["status"] == "POST_STATUS_SCHEDULED" and len(post["parts"]) == 2
    assert flow["name"] == "Welcome offer" and flow["status"] == "FLOW_STATUS_DRAFT"
    assert list(chart) == ["series"] and len(chart["series"]) == 12
    assert all(set(b) == {"startTime", "firstResponse"} for b in chart["series"]), chart

    # A restart keeps the demo working: the sandbox's tokens, webhook and
    # subscription survive in the data directory.
    serve.stop()
    serve.start()
    prelude = "\n".join(walkthrough_blocks()[0].splitlines()[:2])  # activate, field()
    after = serve.bash(
        prelude
        + """
TOKEN=$(mktx-grpc token --merchant 6f1c1c3e-7a43-4c4e-9a57-2f0b7f1b8a10)
AUTH="authorization: Bearer $TOKEN"
ACCOUNT=$(grpcurl -plaintext -H "$AUTH" -d '{}' localhost:50051 mktx.v1.AccountsService/ListAccounts | field accounts.0.id)
grpcurl -plaintext -H "$AUTH" -d "{\\"id\\": \\"$ACCOUNT\\"}" localhost:50051 mktx.v1.AccountsService/GetAccount
curl -s localhost:5081/_sandbox/dms/inbound -H 'content-type: application/json' -d '{"sender_id": "1500000000000000002", "recipient_id": "1500000000000000001", "text": "Still there after the restart?"}'
for _ in $(seq 60); do grpcurl -plaintext -H "$AUTH" -d '{}' localhost:50051 mktx.v1.ConversationsService/ListConversations | grep -q 'after the restart' && break; sleep 0.5; done
CONVERSATION=$(grpcurl -plaintext -H "$AUTH" -d '{}' localhost:50051 mktx.v1.ConversationsService/ListConversations | field conversations.0.id)
grpcurl -plaintext -H "$AUTH" -d "{\\"id\\": \\"$CONVERSATION\\"}" localhost:50051 mktx.v1.ConversationsService/GetConversation
grpcurl -plaintext -H "$AUTH" -d "{\\"conversation_id\\": \\"$CONVERSATION\\", \\"text\\": \\"Yes, still here.\\"}" localhost:50051 mktx.v1.ConversationsService/SendMessage
"""
    )
    assert "ACCOUNT_STATUS_ACTIVE" in after and '"subscribed": true' in after
    assert '"text": "Still there after the restart?"' in after
    assert '"text": "Yes, still here."' in after and "MESSAGE_DELIVERY_STATE_SENT" in after
    sent = httpx.get(f"{sandbox}/_sandbox/dms", params={"sender_id": MERCHANT_ACCOUNT}).json()
    assert "Yes, still here." in [d["text"] for d in sent["data"]]
    # The restart replayed nothing: the welcome DM is still there once.
    assert [d["text"] for d in sent["data"]].count(WELCOME) == 1
    assert (serve.data / "x-sandbox.json").exists()
