"""Migrations and named queries."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from mktx_grpc.core.auth import TokenVerifier
from mktx_grpc.core.config import Settings
from mktx_grpc.core.db import (
    SQL_DIR,
    SchemaMismatch,
    check_schema,
    load_migrations,
    migrate,
    queries,
)


@pytest.fixture
def empty_db(pg_admin_url):
    name = f"mktx_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrations_apply_once_in_order(empty_db):
    applied = migrate(empty_db)
    assert applied == [m.name for m in load_migrations()]
    assert migrate(empty_db) == []  # recorded: nothing to do the second time
    with psycopg.connect(empty_db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == list(range(1, len(applied) + 1))


def test_0023_marks_the_closed_conversations_campaigns_created(empty_db, tmp_path):
    """0023 marks as created closed the conversations campaign dispatch created and that
    are still as it left them (a reopened one, or one an agent closed, is not), and
    drops the episode rows an earlier rebuild gave them."""
    mig_dir = tmp_path / "migrations"
    shutil.copytree(SQL_DIR / "migrations", mig_dir)
    (mig_dir / "0023_conversations_created_closed.sql").unlink()
    migrate(empty_db, mig_dir)
    with psycopg.connect(empty_db) as conn:
        m, a = conn.execute(
            "INSERT INTO accounts (merchant_id, x_user_id, username, auth_method)"
            " VALUES (%s, '1', 'shop', 'OAUTH2') RETURNING merchant_id, id",
            (uuid.uuid4(),),
        ).fetchone()
        convs = {}
        for name, status, reason, closed in [
            ("campaign", "CLOSED", "campaign", "now()"),  # as finish_sent writes it
            ("reopened", "OPEN", "", "NULL"),
            ("agent", "CLOSED", "resolved", "now()"),
            ("closed later", "CLOSED", "campaign", "now() + interval '1 hour'"),
        ]:
            contact = conn.execute(
                "INSERT INTO contacts (merchant_id, account_id, x_user_id) VALUES (%s, %s, %s)"
                " RETURNING id",
                (m, a, name),
            ).fetchone()[0]
            convs[name] = conn.execute(
                "INSERT INTO conversations (merchant_id, account_id, contact_id, status,"
                f" close_reason, closed_at) VALUES (%s, %s, %s, %s, %s, {closed}) RETURNING id",
                (m, a, contact, status, reason),
            ).fetchone()[0]
        # Episode rows an earlier rebuild wrote for the campaign's and the agent's.
        for name in ("campaign", "agent"):
            conn.execute(
                "INSERT INTO analytics_conversation_episodes (merchant_id, conversation_id,"
                " episode, account_id, contact_id, status, opened_at)"
                " SELECT merchant_id, id, 0, account_id, contact_id, status, created_at"
                " FROM conversations WHERE id = %s",
                (convs[name],),
            )
    assert migrate(empty_db) == ["0023_conversations_created_closed"]
    with psycopg.connect(empty_db) as conn:
        marked = {r[0] for r in conn.execute("SELECT id FROM conversations WHERE created_closed")}
        episodes = {
            r[0]
            for r in conn.execute("SELECT conversation_id FROM analytics_conversation_episodes")
        }
    assert marked == {convs["campaign"]}
    assert episodes == {convs["agent"]}  # the campaign's has no episode any more


def test_edited_migration_is_refused(empty_db, tmp_path):
    mig_dir = tmp_path / "migrations"
    shutil.copytree(SQL_DIR / "migrations", mig_dir)
    migrate(empty_db, mig_dir)
    first = sorted(mig_dir.iterdir())[0]
    first.write_text(first.read_text() + "\n-- edited after landing\n")
    with pytest.raises(RuntimeError, match="edited"):
        migrate(empty_db, mig_dir)


def test_a_gap_in_numbering_is_refused(tmp_path):
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="expected 0002"):
        load_migrations(tmp_path)


def test_a_failing_migration_leaves_no_trace(empty_db, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE t1 (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE t2 (id int); SELECT * FROM nope;")
    with pytest.raises(psycopg.errors.UndefinedTable):
        migrate(empty_db, tmp_path)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('t2')").fetchone()[0] is None
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations")] == ["0001_ok"]


def test_a_database_migrated_by_a_newer_release_is_refused(empty_db):
    migrate(empty_db)
    check_schema(empty_db)  # exactly the migrations this binary knows: fine
    newer = len(load_migrations()) + 1
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, 'x')",
            (newer, f"{newer:04d}_from_the_future"),
        )
    with pytest.raises(SchemaMismatch, match=f"{newer:04d}_from_the_future"):
        check_schema(empty_db)
    with pytest.raises(SchemaMismatch, match="newer release"):
        migrate(empty_db)
    # The worker refuses to start with the same message, and no traceback.
    proc = subprocess.run(
        [sys.executable, "-m", "mktx_grpc.cli", "worker"],
        capture_output=True,
        text=True,
        env={
            "DATABASE_URL": empty_db,
            "PATH": "/usr/bin:/bin",
            "MKTX_LOG_LEVEL": "WARNING",
            "MKTX_WORKER_METRICS_PORT": "0",
        },
        timeout=60,
    )
    assert proc.returncode == 2
    assert "does not know" in proc.stderr and "Traceback" not in proc.stderr


def test_a_database_with_pending_migrations_is_refused_by_the_worker(empty_db, tmp_path):
    mig_dir = tmp_path / "migrations"
    shutil.copytree(SQL_DIR / "migrations", mig_dir)
    last = sorted(mig_dir.iterdir())[-1]
    last.unlink()
    migrate(empty_db, mig_dir)
    with pytest.raises(SchemaMismatch, match=f"lacks 1 migration.*{last.stem}"):
        check_schema(empty_db)


TENANT_TABLES = (
    "templates",
    "accounts",
    "contacts",
    "conversations",
    "messages",
    "segments",
    "campaigns",
    "flows",
    "domain_events",
)


def test_every_named_query_filters_by_merchant():
    """Tenant isolation is checkable: a query on a tenant table names merchant_id,
    unless it declares itself cross-tenant with a reason (webhook routing by X user
    id, background claims across merchants) in a ``/* cross-tenant: why */`` comment."""
    import re

    offenders = []
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        named = queries(path.stem)
        assert named, f"{path.name} has no named queries"
        for name, text in named.items():
            lowered = text.lower()
            tables = {t for t in TENANT_TABLES if re.search(rf"\b{t}\b", lowered)}
            if tables and "merchant_id" not in lowered and "cross-tenant:" not in lowered:
                offenders.append(f"{path.name}:{name} reads {sorted(tables)} without merchant_id")
    assert not offenders, "\n".join(offenders)


def test_token_command_prints_only_a_valid_token(tmp_path, monkeypatch):
    merchant = uuid.uuid4()
    env = {"MKTX_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    # `serve` generates the secrets on its first start; `token` only reads them
    # (tests/test_token_checks.py: it never invents one).
    monkeypatch.setenv("MKTX_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MKTX_JWT_SECRET", raising=False)
    monkeypatch.delenv("MKTX_JWT_PUBLIC_KEY", raising=False)
    Settings.from_env()
    out = subprocess.run(
        [sys.executable, "-m", "mktx_grpc.cli", "token", "--merchant", str(merchant)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert out.count("\n") == 1
    # The server reads the same generated secret from the data directory.
    assert TokenVerifier(Settings.from_env()).verify(out.strip()).merchant_id == merchant
    bad = subprocess.run(
        [sys.executable, "-m", "mktx_grpc.cli", "token", "--merchant", "not-a-uuid"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and not bad.stdout
