"""Database plumbing: the embedded server, migrations, the pool and named queries."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import select
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import AsyncConnection, IsolationLevel
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from .context import connection_var, current_connection, snapshot_var

log = logging.getLogger(__name__)
T = TypeVar("T")

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
if not SQL_DIR.exists():  # running from a source checkout: sql/ sits at the repo root
    SQL_DIR = Path(__file__).resolve().parents[3] / "sql"

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# An arbitrary, fixed key for pg_advisory_lock so concurrent migrators serialise.
_MIGRATION_LOCK = 727_001


def embedded_database_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir/pg`` and return its URL.

    The server is stopped when the last process using it exits. Raises whatever
    ``pgserver`` raises when PostgreSQL cannot start (its log is in ``data_dir/pg/log``).
    """
    from pgserver.postgres_server import get_server

    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    return uri


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Return the numbered migrations in order. Raises ``ValueError`` on a gap or clash."""
    directory = directory or SQL_DIR / "migrations"
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        m = _MIGRATION_RE.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), path.stem, path.read_text()))
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise ValueError(f"migration numbering broken at {mig.name}: expected {expected:04d}")
    return found


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this binary was built for."""


def _unknown_applied(applied: Mapping[int, str], known: list[Migration]) -> str | None:
    """A message naming the applied migrations this binary does not know, or None."""
    versions = {m.version for m in known}
    unknown = sorted(v for v in applied if v not in versions)
    if not unknown:
        return None
    names = ", ".join(f"{v:04d}_{applied[v]}" if applied[v] else f"{v:04d}" for v in unknown)
    newest = max(versions, default=0)
    return (
        f"the database has migrations this mktx-grpc does not know ({names}; this binary"
        f" knows up to {newest:04d}): it was migrated by a newer release. Run that release"
        " (or newer) against it; refusing to start rather than run on a schema it does not"
        " understand"
    )


def check_schema(conninfo: str, directory: Path | None = None) -> None:
    """Raise SchemaMismatch unless the database has exactly the migrations this binary
    knows: none it does not know (a newer release migrated it) and none pending (run
    ``mktx-grpc migrate``, or ``serve``, which migrates on start)."""
    known = load_migrations(directory)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied: dict[int, str] = {}
        if exists and exists[0]:
            applied = {
                int(v): str(n)
                for v, n in conn.execute("SELECT version, name FROM schema_migrations")
            }
    problem = _unknown_applied(applied, known)
    if problem:
        raise SchemaMismatch(problem)
    pending = [m.name for m in known if m.version not in applied]
    if pending:
        raise SchemaMismatch(
            f"the database lacks {len(pending)} migration(s) ({', '.join(pending)}):"
            " run `mktx-grpc migrate` (or `mktx-grpc serve`, which migrates on start)"
        )


def migrate(conninfo: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction, each recorded once.

    Concurrent callers serialise on an advisory lock. Raises ``RuntimeError`` when an
    applied migration's file changed since (migrations are never edited after landing),
    and ``SchemaMismatch`` (before changing anything) when the database has migrations
    this binary does not know. Returns the names applied by this call.
    """
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            rows = conn.execute("SELECT version, checksum, name FROM schema_migrations")
            done: dict[int, str] = {}
            names: dict[int, str] = {}
            for version, checksum, name in rows:
                done[version], names[version] = checksum, name
            known = load_migrations(directory)
            problem = _unknown_applied(names, known)
            if problem:
                raise SchemaMismatch(problem)
            for mig in known:
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        raise RuntimeError(f"applied migration {mig.name} was edited afterwards")
                    continue
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.checksum),
                    )
                log.info("applied migration %s", mig.name)
                applied_now.append(mig.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied_now


#: Seconds the pool keeps retrying one failed connection attempt (psycopg_pool's
#: back-off: 1 s, then the rest) before it gives that slot up; the next caller waiting
#: for a connection starts a new attempt at once. Short, so that a database that
#: comes back is reconnected to within about a second (the library default, 5 min,
#: backs off to 8 s, 16 s, ... between attempts).
RECONNECT_TIMEOUT = 1.5
#: The library's default wait for a pooled connection, for pools made without one.
DEFAULT_WAIT_MAX = 30.0


#: Seconds a call waits for a pooled connection while the health probe finds the
#: database unreachable: enough for a connection that is ready, not the full wait.
OUTAGE_WAIT = 0.25


class DatabaseState:
    """What the process's health probe last found: whether the database answers.

    While it does not, calls wait only :data:`OUTAGE_WAIT` for a connection (then
    UNAVAILABLE: retry elsewhere) instead of their whole deadline in the pool's
    queue; the probe keeps the pool reconnecting meanwhile."""

    def __init__(self) -> None:
        self.reachable = True

    def wait_for(self, wait: float | None) -> float | None:
        """The pool wait for a call that would otherwise wait ``wait`` seconds."""
        if self.reachable:
            return wait
        return OUTAGE_WAIT if wait is None else min(wait, OUTAGE_WAIT)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) says the database could not be
    reached or the connection died: a connection refused, an administrator shutdown,
    a connection lost mid-query, no pooled connection free in time, a closed pool.
    These are worth retrying elsewhere or later; they are not bugs."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, psycopg.OperationalError | PoolTimeout | PoolClosed):
            return True
        if isinstance(cur, ConnectionError):  # refused, reset, aborted
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def _has_input(sock: int) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


async def check_connection(conn: AsyncConnection[Any]) -> None:
    """Raise when ``conn`` is dead. Cheap for a live one.

    A healthy idle connection has nothing to read; one the server closed (a restart,
    an administrator's shutdown, a crashed backend) has its goodbye or an EOF waiting.
    Only a connection that is broken or has input pays for psycopg_pool's round-trip
    check (``AsyncConnectionPool.check_connection``), so the common case costs a
    ``select`` and no round trip. A connection that died silently (a network
    partition) fails on its query instead; it is then discarded when it is returned.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if _has_input(conn.pgconn.socket):
        await AsyncConnectionPool.check_connection(conn)


def _checkout_check(pools: list[AsyncConnectionPool]) -> Any:
    """The pool's check on checkout (``pools`` holds the pool, once made): a dead
    connection is discarded (and replaced) instead of handed out.

    One dead connection means the others idle beside it probably died too (the server
    restarted): before this one is refused, the pool's idle connections are swept
    (``AsyncConnectionPool.check``), because psycopg_pool backs off a second and more
    between further failed checks of one request, which after a restart would cost
    every request a second per dead connection it drew."""
    sweeping = False

    async def check(conn: AsyncConnection[Any]) -> None:
        nonlocal sweeping
        try:
            await check_connection(conn)
        except Exception:
            if pools and not sweeping:
                sweeping = True
                try:
                    await pools[0].check()
                except Exception:  # the sweep is an optimisation; the refusal is not
                    log.debug("sweeping the pool's idle connections failed", exc_info=True)
                finally:
                    sweeping = False
            raise

    return check


def make_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    metrics: bool = True,
    wait_max: float = DEFAULT_WAIT_MAX,
) -> AsyncConnectionPool:
    """Build an unopened pool whose connections are in autocommit.

    Reads run as single autocommitted statements (no BEGIN/COMMIT round trips); the
    unit of work opens an explicit transaction for mutations. The pool publishes its
    metrics (``core.metrics.InstrumentedPool``: connection waits, size, use, queue)
    unless ``metrics`` is False. ``wait_max`` bounds every wait for a connection
    (``PoolTimeout`` after it). Dead connections are discarded on checkout
    (:func:`check_connection`) and lost ones reconnected with a short back-off
    (:data:`RECONNECT_TIMEOUT`), so service resumes about a second after the
    database returns.
    """
    from .metrics import InstrumentedPool

    cls = InstrumentedPool if metrics else AsyncConnectionPool
    made: list[AsyncConnectionPool] = []
    pool = cls(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        name="mktx",
        timeout=wait_max,
        check=_checkout_check(made),
        reconnect_timeout=RECONNECT_TIMEOUT,
    )
    made.append(pool)
    return pool


# ------------------------------------------------------------------ connections

Isolation = Literal["read_committed", "repeatable_read", "serializable"]
_ISOLATION = {
    "read_committed": IsolationLevel.READ_COMMITTED,
    "repeatable_read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}


@asynccontextmanager
async def use_connection(
    pool: AsyncConnectionPool,
    *,
    transaction: bool = False,
    isolation: Isolation | None = None,
    read_only: bool = False,
    wait: float | None = None,
) -> AsyncIterator[AsyncConnection[Any]]:
    """Borrow a pooled connection and publish it to the store layer for the block.

    This is the only place that sets the current connection (the unit-of-work
    interceptor uses it too), so every transaction has exactly one owner: the block
    that opened it. With ``transaction`` the block runs in one transaction, committed
    when it exits normally and rolled back when it raises; ``isolation`` and
    ``read_only`` apply to that transaction (they imply ``transaction``). Without it
    each statement autocommits. The block's connection is independent of any
    connection the caller already holds: an enclosing unit of work is neither joined
    nor affected, which is what facts that must stick even when the caller rolls
    back need (an account marked ERROR, a DM recorded as sent).

    Raises ``psycopg_pool.PoolTimeout`` when no connection is free within
    ``wait`` seconds (the pool's default when None), and whatever the database
    raises.
    """
    async with pool.connection(timeout=wait) as conn:
        token = connection_var.set(conn)
        try:
            if not (transaction or isolation or read_only):
                yield conn
                return
            if isolation is not None or read_only:
                await conn.set_isolation_level(_ISOLATION[isolation] if isolation else None)
                await conn.set_read_only(True if read_only else None)
            try:
                async with conn.transaction():
                    yield conn
            finally:
                if isolation is not None or read_only:
                    await conn.set_isolation_level(None)
                    await conn.set_read_only(None)
        finally:
            connection_var.reset(token)


#: Gathered snapshot reads run side by side already, one core each: PostgreSQL's own
#: parallel workers would only take the cores the other reads use (a parallel plan of
#: the per-assignee report measured about 3x its CPU for 0.9x its time).
_NO_GATHER = "SET LOCAL max_parallel_workers_per_gather = 0"

#: How long :meth:`Snapshot.gather` waits for a free pooled connection for a read it
#: could run beside the others; with none free in time the read runs on the
#: snapshot's own connection, in turn with the others. A call holding a connection
#: waits no longer than this for another, so callers cannot deadlock each other on a
#: full pool.
SIDE_CONNECTION_WAIT = 0.005


class Snapshot:
    """A REPEATABLE READ, read-only transaction that reads can join from other
    connections (:meth:`gather`). Open one with :func:`read_snapshot`."""

    def __init__(self, pool: AsyncConnectionPool, conn: AsyncConnection[Any]) -> None:
        self._pool = pool
        self._conn = conn
        self._name: str | None = None

    async def _export(self) -> str:
        """The snapshot's name for other connections, exported on first use (a report
        that never gathers pays nothing for it: an export writes a file on the
        server). In REPEATABLE READ the transaction's snapshot is fixed at its first
        statement, so exporting later exports that same snapshot. From then on this
        connection's queries run without parallel workers too (see _NO_GATHER)."""
        if self._name is None:
            cur = await self._conn.execute(
                "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                " pg_export_snapshot()"
            )
            row = await cur.fetchone()
            assert row is not None
            self._name = str(row[1])
        return self._name

    async def _beside(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            conn = await self._pool.getconn(timeout=SIDE_CONNECTION_WAIT)
        except PoolTimeout:
            return await call()  # on the snapshot's own connection: psycopg serialises
        try:
            token = connection_var.set(conn)
            try:
                await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
                await conn.set_read_only(True)
                async with conn.transaction():
                    await conn.execute(
                        psycopg.sql.SQL("SET TRANSACTION SNAPSHOT {}; {};").format(
                            psycopg.sql.Literal(name), psycopg.sql.SQL(_NO_GATHER)
                        )
                    )
                    return await call()
            finally:
                connection_var.reset(token)
                await conn.set_isolation_level(None)
                await conn.set_read_only(None)
        finally:
            await self._pool.putconn(conn)

    async def gather(self, *calls: Callable[[], Awaitable[T]]) -> list[T]:
        """Run ``calls`` at the same time, each on a connection of its own that sees
        exactly this snapshot (so their results are as consistent as one statement's),
        and return their results in order. The first runs on the snapshot's own
        connection; the others on pooled connections free right now, or, with none
        free, on the snapshot's in turn with it (psycopg runs one statement at a time
        on a connection). The first error cancels the rest and is raised as it is."""
        if len(calls) < 2:
            return [await c() for c in calls]
        name = await self._export()
        tasks = [asyncio.ensure_future(calls[0]())]
        tasks += [asyncio.ensure_future(self._beside(name, c)) for c in calls[1:]]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise


@asynccontextmanager
async def read_snapshot(
    pool: AsyncConnectionPool, *, wait: float | None = None
) -> AsyncIterator[Snapshot]:
    """Borrow a pooled connection for a REPEATABLE READ, read-only transaction,
    publish it as the current connection (as :func:`use_connection` does) and yield
    a :class:`Snapshot` whose :meth:`~Snapshot.gather` runs reads beside it, on other
    connections, in the same snapshot (``pg_export_snapshot``, on the first gather).
    For a report made of several queries: every part sees the same data, and
    independent ones gathered use more than one core on an idle server."""
    async with use_connection(pool, isolation="repeatable_read", read_only=True, wait=wait) as conn:
        yield Snapshot(pool, conn)


async def gather_reads(*calls: Callable[[], Awaitable[T]]) -> list[T]:
    """Run independent reads and return their results in order: side by side in the
    unit of work's snapshot when it is a ``snapshot`` read (:meth:`Snapshot.gather`),
    else one after another on the current connection."""
    snap: Snapshot | None = snapshot_var.get()
    if snap is not None:
        return await snap.gather(*calls)
    return [await c() for c in calls]


@asynccontextmanager
async def savepoint() -> AsyncIterator[None]:
    """A savepoint on the current connection's transaction: the block's changes are
    kept or rolled back together (raising rolls back the block only), without ending
    the enclosing transaction. Outside a transaction it is a transaction of its own."""
    async with current_connection().transaction():
        yield


class DatabaseProbe:
    """Whether the database answers, asked on a connection of its own (not pooled), so
    that a saturated pool (a busy, healthy database) is not taken for an unreachable
    one. Reconnects on the next probe after a failure. Close it with :meth:`close`."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None

    async def ok(self, within: float = 1.0) -> bool:
        """True when ``SELECT 1`` answers within ``within`` seconds (connecting first
        when needed); any failure is False."""
        try:
            async with asyncio.timeout(within):
                conn = self._conn
                if conn is None or conn.closed or conn.broken:
                    await self.close()
                    conn = self._conn = await AsyncConnection.connect(
                        self._conninfo, autocommit=True, application_name="mktx-health"
                    )
                await conn.execute("SELECT 1")
        except Exception:  # any failure means unhealthy; the connection is suspect
            await self.close()
            return False
        return True

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.debug("closing the health probe's connection failed", exc_info=True)


async def database_ok(pool: AsyncConnectionPool, within: float = 2.0) -> bool:
    """Whether the database answers a trivial query within ``within`` seconds."""
    try:
        async with asyncio.timeout(within), use_connection(pool, wait=within) as conn:
            await conn.execute("SELECT 1")
    except Exception:  # any failure means unhealthy
        return False
    return True


# ------------------------------------------------------------------ named queries

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def queries(domain: str) -> Mapping[str, str]:
    """Load ``sql/queries/<domain>.sql`` as ``{name: sql}``.

    Each query starts with a ``-- name: <name>`` line, in the manner of aiosql; the
    text up to the next such line is the statement, with ``%(param)s`` placeholders.
    Raises ``ValueError`` on a duplicate name.
    """
    text = (SQL_DIR / "queries" / f"{domain}.sql").read_text()
    parts = _NAME_RE.split(text)
    result: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in result:
            raise ValueError(f"duplicate query {name} in {domain}.sql")
        lines = [ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")]
        result[name] = "\n".join(lines).strip().rstrip(";")
    return result


class Queries:
    """Attribute access to one domain's named queries: ``Q.get_template``.

    The file is loaded when the object is made (at import of the store module), so a
    missing file fails at once; a misspelled name raises AttributeError when used,
    and ``tests/test_architecture.py`` checks every name used in src/ exists.
    """

    def __init__(self, domain: str) -> None:
        self._domain = domain
        queries(domain)

    def __getattr__(self, name: str) -> str:
        try:
            return queries(self._domain)[name]
        except KeyError:
            raise AttributeError(f"no query {name!r} in {self._domain}.sql") from None


Row = dict[str, Any]
