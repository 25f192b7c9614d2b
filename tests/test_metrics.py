"""Operator metrics (issue 15 §4), scraped over HTTP and read with prometheus-client's
own text parser, as Prometheus would: gRPC calls by method and code with latency and
in-flight calls, the connection pool, X calls (outcomes, 429s, breaker), database
queue gauges, and ``serve --workers 2`` adding its processes up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import xhelpers as xh
from campaign_helpers import add_contacts
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import free_port, free_ports
from prometheus_client.parser import text_string_to_metric_families

from mktx.v1 import accounts_pb2 as A
from mktx.v1 import accounts_pb2_grpc, templates_pb2, templates_pb2_grpc
from mktx_grpc.x.transport import endpoint_of

BIN = Path(sys.executable).parent
GET_TEMPLATE = "/mktx.v1.TemplatesService/GetTemplate"
CREATE_TEMPLATE = "/mktx.v1.TemplatesService/CreateTemplate"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """(family name -> type, (sample name, sorted labels) -> value)."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(http: httpx.AsyncClient, url: str) -> tuple[dict[str, str], Samples]:
    resp = await http.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(resp.text)


@pytest.fixture
async def metrics_url(api, serve_sidecar) -> str:
    sidecar = await serve_sidecar(deps=api.app.deps, lifespan="off")
    return f"{sidecar.base_url}/metrics"


@pytest.fixture
async def http() -> Iterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_grpc_calls_latency_and_in_flight(api, merchant, metrics_url, http):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    _, before = await scrape(http, metrics_url)
    md = api.auth(merchant)
    for i in range(2):
        await stub.CreateTemplate(
            templates_pb2.CreateTemplateRequest(
                template=templates_pb2.Template(
                    name=f"m{i}", type=templates_pb2.TEMPLATE_TYPE_TEXT, content="hi"
                )
            ),
            metadata=md,
        )
    missing = templates_pb2.GetTemplateRequest(id=str(uuid.uuid4()))
    for _ in range(3):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetTemplate(missing, metadata=md)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.GetTemplate(missing)  # no token
    types, after = await scrape(http, metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert types["mktx_grpc_calls"] == "counter"
    assert types["mktx_grpc_call_duration_seconds"] == "histogram"
    assert types["mktx_grpc_calls_in_flight"] == "gauge"
    assert delta("mktx_grpc_calls_total", method=CREATE_TEMPLATE, code="OK") == 2
    assert delta("mktx_grpc_calls_total", method=GET_TEMPLATE, code="NOT_FOUND") == 3
    assert delta("mktx_grpc_calls_total", method=GET_TEMPLATE, code="UNAUTHENTICATED") == 1
    assert delta("mktx_grpc_calls_total", method=GET_TEMPLATE, code="OK") == 0
    count = "mktx_grpc_call_duration_seconds_count"
    assert delta(count, method=GET_TEMPLATE, code="NOT_FOUND") == 3
    inf = delta("mktx_grpc_call_duration_seconds_bucket", method=GET_TEMPLATE, code="NOT_FOUND",
                le="+Inf")  # fmt: skip
    assert inf == 3
    assert delta("mktx_grpc_call_duration_seconds_sum", method=GET_TEMPLATE, code="NOT_FOUND") > 0
    assert value(after, "mktx_grpc_calls_in_flight", method=GET_TEMPLATE) == 0
    # The pool: every RPC with a unit of work waited (briefly) for a connection.
    assert delta("mktx_db_pool_wait_seconds_count") >= 5
    assert value(after, "mktx_db_pool_connections") >= 1
    assert value(after, "mktx_db_pool_max_connections") >= 4
    assert value(after, "mktx_db_pool_requests_waiting") == 0


async def test_in_flight_counts_an_open_stream(api, merchant, metrics_url, http):
    from mktx.v1 import conversations_pb2, conversations_pb2_grpc

    stub = conversations_pb2_grpc.ConversationsServiceStub(api.channel)
    call = stub.WatchConversations(
        conversations_pb2.WatchConversationsRequest(), metadata=api.auth(merchant)
    )
    method = "/mktx.v1.ConversationsService/WatchConversations"
    deadline = time.monotonic() + 30
    while True:
        _, samples = await scrape(http, metrics_url)
        if value(samples, "mktx_grpc_calls_in_flight", method=method) == 1:
            break
        assert time.monotonic() < deadline, "the open stream was never counted in flight"
    call.cancel()
    while True:
        _, samples = await scrape(http, metrics_url)
        if value(samples, "mktx_grpc_calls_in_flight", method=method) == 0:
            break
        assert time.monotonic() < deadline, "the cancelled stream stayed in flight"
    assert value(samples, "mktx_grpc_calls_total", method=method, code="CANCELLED") >= 1


async def test_the_readme_documents_every_metric(api, metrics_url, http):
    """The README's Metrics table (one table: a blank line would end it) has a row for
    every metric a scrape shows, with its type, and no row for a metric there is not."""
    types, _ = await scrape(http, metrics_url)
    # In one process (the tests) prometheus-client adds a `<name>_created` series to
    # each counter and histogram; serve's multiprocess mode has none.
    types = {
        n: k for n, k in types.items() if n.removesuffix("_created") == n or n[:-8] not in types
    }
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    lines = section.splitlines()
    start = lines.index("| metric | type | labels | meaning |")
    table = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        table.append(line)
    rows = [re.match(r"\| `(mktx_[a-z_]+)` \| (counter|gauge|histogram) \|", r) for r in table]
    assert all(rows), [r for r, m in zip(table, rows, strict=True) if not m]
    documented = {}
    for m in rows:
        assert m is not None
        name, kind = m.groups()
        # The exposition's counter samples end in _total; the family name does not.
        documented[name.removesuffix("_total") if kind == "counter" else name] = kind
    assert len(documented) == len(rows)  # no metric twice
    assert documented == types


def test_x_endpoints_are_labelled_without_ids():
    assert endpoint_of("POST", "/2/dm_conversations/with/1500000000000000002/messages") == (
        "POST /2/dm_conversations/with/:id/messages"
    )
    assert endpoint_of("GET", "/2/dm_conversations/15-16/dm_events?x=1") == (
        "GET /2/dm_conversations/:id/dm_events"
    )
    assert endpoint_of("GET", "/2/users/me") == "GET /2/users/me"


async def test_x_calls_rate_limits_and_breaker(api, merchant, sandbox, metrics_url, http):
    _, before = await scrape(http, metrics_url)
    stub = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    md = api.auth(merchant)
    account = await xh.connect(stub, md, xh.new_x_user(sandbox))
    # The next X call gets a 429 that resets too late to wait for.
    await http.post(
        f"{sandbox.base_url}/_sandbox/faults",
        json={"rate_limit_next": 1, "rate_limit_reset_after": 3600},
    )
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RefreshAccountTokens(
                A.RefreshAccountTokensRequest(id=account.id), metadata=md
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await http.delete(f"{sandbox.base_url}/_sandbox/faults")
    types, after = await scrape(http, metrics_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    token = "POST /2/oauth2/token"
    assert delta("mktx_x_requests_total", endpoint=token, outcome="ok") >= 1
    assert delta("mktx_x_requests_total", endpoint="GET /2/users/me", outcome="ok") >= 1
    assert delta("mktx_x_requests_total", endpoint=token, outcome="rate_limited") == 1
    assert delta("mktx_x_rate_limited_total", endpoint=token) == 1
    assert delta("mktx_x_request_duration_seconds_count", endpoint=token) >= 2
    host = sandbox.base_url.removeprefix("http://")
    assert types["mktx_x_breaker_state"] == "gauge"
    assert ("mktx_x_breaker_state", (("host", host),)) in after
    assert value(after, "mktx_x_breaker_state", host=host) == 0  # closed


async def test_database_gauges(api, merchant, sandbox, db, metrics_url, http):
    stub = accounts_pb2_grpc.AccountsServiceStub(api.channel)
    account = await xh.connect(stub, api.auth(merchant), xh.new_x_user(sandbox))
    # A RUNNING campaign with three recipients due.
    contacts = await add_contacts(db, sandbox, merchant, account.id, 3)
    campaign = uuid.uuid4()
    await db.execute(
        "INSERT INTO campaigns (id, merchant_id, account_id, name, type, status)"
        " VALUES (%s, %s, %s, 'm', 'BULK_DM', 'RUNNING')",
        (campaign, merchant, account.id),
    )
    for cid, _ in contacts:
        await db.execute(
            "INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id)"
            " VALUES (%s, %s, %s)",
            (merchant, campaign, cid),
        )
    # Two inbox rows: one pending, one dead.
    await db.execute(
        "INSERT INTO webhook_inbox (event_key, for_user_id, event_type, payload, processed_at,"
        " outcome) VALUES ('m-dead', '1', 'direct_message_events', '{}', now(), 'DEAD'),"
        " ('m-pending', '1', 'direct_message_events', '{}', NULL, '')"
    )
    # A consumer two events behind, one of them parked.
    await db.execute("INSERT INTO event_consumer_cursors (consumer, last_event_id) VALUES ('m', 0)")
    for _ in range(2):
        await db.execute(
            "INSERT INTO domain_events (merchant_id, type, payload) VALUES (%s, 'x.test', %s)",
            (merchant, json.dumps({})),
        )
    await db.execute(
        "INSERT INTO event_consumer_failures (consumer, event_id, merchant_id, event_type,"
        " attempts, reason, parked_at) VALUES ('m', 1, %s, 'x.test', 5, 'boom', now())",
        (merchant,),
    )
    types, samples = await scrape(http, metrics_url)
    assert value(samples, "mktx_metrics_database_up") == 1
    assert value(samples, "mktx_campaign_recipients_due") == 3
    assert ("mktx_outbound_dms_queued", ()) in samples and ("mktx_outbound_dms_due", ()) in samples
    assert value(samples, "mktx_webhook_inbox_pending") == 1
    assert value(samples, "mktx_webhook_inbox_dead") == 1
    assert value(samples, "mktx_webhook_inbox_oldest_pending_age_seconds") >= 0
    newest = (await (await db.execute("SELECT max(id) FROM domain_events")).fetchone())[0]
    assert value(samples, "mktx_outbox_consumer_lag_events", consumer="m") == newest
    assert value(samples, "mktx_outbox_consumer_lag_seconds", consumer="m") >= 0
    assert value(samples, "mktx_outbox_consumer_parked_events", consumer="m") == 1
    assert value(samples, "mktx_outbox_consumer_retrying_events", consumer="m") == 0
    assert value(samples, "mktx_dm_budget_accounts") == 1
    assert value(samples, "mktx_dm_budget_remaining") == 15  # X's 15 DMs per 15 minutes
    assert value(samples, "mktx_dm_budget_exhausted_accounts") == 0
    assert types["mktx_campaign_recipients_due"] == "gauge"


async def test_scrape_survives_a_database_outage(api, metrics_url, http):
    await api.app.deps.pool.close()
    types, samples = await scrape(http, metrics_url)
    assert value(samples, "mktx_metrics_database_up") == 0
    assert "mktx_campaign_recipients_due" not in types
    assert "mktx_grpc_calls" in types  # the process's own metrics still render


# ---------------------------------------------------------------- real processes


def clean_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MKTX_", "X_", "PROMETHEUS"))}
    env.update(
        DATABASE_URL=database_url,
        MKTX_DATA_DIR=str(tmp_path / "data"),
        MKTX_SANDBOX_PORT="0",
        MKTX_SHUTDOWN_GRACE="1",
        MKTX_RUN_WORKER="false",
        **extra,
    )
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} never answered:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


@pytest.mark.slow
def test_serve_with_two_processes_adds_their_metrics_up(tmp_path, database_url):
    grpc_port, webhook_port = free_ports(2)
    counts = tmp_path / "metrics"
    env = clean_env(
        tmp_path,
        database_url,
        MKTX_GRPC_PORT=str(grpc_port),
        MKTX_WEBHOOK_PORT=str(webhook_port),
        MKTX_POOL_MAX_SIZE="3",
        PROMETHEUS_MULTIPROC_DIR=str(counts),
    )
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "mktx-grpc"), "serve", "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{webhook_port}/metrics"
        wait_http(url, proc, log)
        # Both processes publish their pool (max 3 each) once open: the scrape adds up.
        deadline = time.monotonic() + 60
        while True:
            _, samples = parse(httpx.get(url).text)
            if value(samples, "mktx_db_pool_max_connections") == 6:
                break
            assert time.monotonic() < deadline, "the second process's pool never showed"
            time.sleep(0.3)
        # Many connections, which SO_REUSEPORT spreads over the processes. The second
        # process may open its pool before it listens for gRPC, so batches go on until
        # each process has answered some (each counts in its own file), within a bound.
        from prometheus_client.mmap_dict import MmapedDict

        method = "/grpc.health.v1.Health/Check"

        def per_process() -> list[float]:
            counted = []
            for path in counts.glob("counter_*.db"):
                counted.append(sum(
                    v
                    for key, v, _, _ in MmapedDict.read_all_values_from_file(str(path))
                    if key.startswith('["mktx_grpc_calls", "mktx_grpc_calls_total"')
                    and method in key
                ))  # fmt: skip
            return counted

        calls = 0
        while True:
            for _ in range(16):
                with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                    health = health_pb2_grpc.HealthStub(channel)
                    for _ in range(3):
                        health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                        calls += 1
            time.sleep(1.2)  # each process publishes its counts within a second
            if len([n for n in per_process() if n]) == 2:
                break
            assert time.monotonic() < deadline + 60, f"one process answered all: {per_process()}"
        # The scrape adds the processes' counts up to exactly the calls made.
        while True:
            _, samples = parse(httpx.get(url).text)
            if value(samples, "mktx_grpc_calls_total", method=method, code="OK") >= calls:
                break
            assert time.monotonic() < deadline + 90, "the processes' counts never added up"
            time.sleep(0.3)
        assert value(samples, "mktx_grpc_calls_total", method=method, code="OK") == calls
        assert value(samples, "mktx_grpc_call_duration_seconds_count", method=method,
                     code="OK") == calls  # fmt: skip
        assert sum(per_process()) == calls
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_worker_serves_metrics_on_its_own_port(tmp_path, database_url):
    port = free_port()
    env = clean_env(tmp_path, database_url, MKTX_WORKER_METRICS_PORT=str(port))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "mktx-grpc"), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        types, samples = parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert value(samples, "mktx_metrics_database_up") == 1
        assert value(samples, "mktx_db_pool_wait_seconds_count") >= 1  # the loops ran
        assert "mktx_webhook_requests" in types  # the retry loop's webhook counters
        assert "mktx_outbox_consumer_lag_events" in types
        assert types["mktx_outbox_consumer_held_seconds"] == "gauge"
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]


def test_deferred_counts_publish_exactly_what_direct_observation_would():
    """The per-call path counts in plain numbers (core.metrics.Deferred*); once
    flushed, the histogram and counter hold what observing directly would give,
    bucket bounds included (``le`` is inclusive)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    from mktx_grpc.core import metrics as cm

    registry = CollectorRegistry()
    bounds = (0.001, 0.01, 0.1)
    deferred_h = Histogram("d", "d", ["m"], buckets=bounds, registry=registry)
    direct_h = Histogram("r", "r", ["m"], buckets=bounds, registry=registry)
    deferred_c = Counter("dc", "dc", registry=registry)
    gauge = Gauge("g", "g", registry=registry)
    hist = cm.DeferredHistogram(deferred_h.labels("x"))
    count = cm.DeferredCounter(deferred_c)
    level = cm.DeferredGauge(gauge)
    values = [0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.2, 7.0]
    for v in values:
        hist.observe(v)
        direct_h.labels("x").observe(v)
        count.inc()
    level.value = 3
    assert registry.get_sample_value("dc_total") == 0  # nothing published yet
    cm.flush_all()
    cm.flush_all()  # a second flush adds nothing

    def samples(name: str) -> dict[str, float]:
        return {
            s.labels.get("le", s.name.rsplit("_", 1)[1]): s.value
            for f in registry.collect()
            if f.name == name
            for s in f.samples
            if s.name.endswith(("_bucket", "_count", "_sum"))
        }

    got, want = samples("d"), samples("r")
    assert set(got) == set(want) and all(abs(got[k] - want[k]) < 1e-12 for k in want), (got, want)
    assert registry.get_sample_value("dc_total") == len(values)
    assert registry.get_sample_value("g") == 3
