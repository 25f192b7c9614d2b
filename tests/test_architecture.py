"""The layering rules of ARCHITECTURE.md, checked so they do not depend on memory.

- import-linter contracts (pyproject.toml ``[tool.importlinter]``): domain/ imports
  no I/O; servicers do not import each other; only server.py imports servicers;
  store/, mapping/, validation/, x/ and ai/ do not reach up; core/ imports no layer;
- the servicer contract covers every top-level module, so a new package is under it
  from the day it lands;
- servicers hold no SQL text and no transaction control;
- every named query used in src/ exists in sql/queries/.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mktx_grpc
from mktx_grpc.core.db import Queries, queries

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mktx_grpc"


def _modules() -> list[ModuleType]:
    found = []
    for info in pkgutil.walk_packages(mktx_grpc.__path__, "mktx_grpc."):
        found.append(importlib.import_module(info.name))
    return found


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


#: The process itself: it composes the servicers (app and cli through server.py).
_ENTRY_POINTS = {"server", "app", "cli", "services"}


def _contract(name: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (found,) = [c for c in contracts if c["name"] == name]
    return found  # type: ignore[no-any-return]


def test_only_the_process_may_import_servicers() -> None:
    """The forbidden contract names its sources, so a module it does not list is not
    checked at all (ai/ once was not): every top-level module but the process must be
    listed."""
    contract = _contract("only server.py imports servicers")
    assert contract["forbidden_modules"] == ["mktx_grpc.services"]
    listed = {m.removeprefix("mktx_grpc.") for m in contract["source_modules"]}
    top = {info.name for info in pkgutil.iter_modules(mktx_grpc.__path__)}
    assert {"services", "worker", "validation"} <= top  # the scan saw the package
    assert sorted(top - listed - _ENTRY_POINTS) == []
    assert sorted(listed - top) == []  # no stale names either


_SQL = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s|WITH\s+\S+\s+AS\s*\("
    r"|SET\s+(TRANSACTION|LOCAL|SESSION)\s|BEGIN\b|COMMIT\b|ROLLBACK\b)",
    re.I,
)
_FORBIDDEN_CALLS = {
    "transaction",
    "execute",
    "executemany",
    "cursor",
    "set_isolation_level",
    "set_read_only",
    "commit",
    "rollback",
    "use_connection",
    "current_connection",
    "savepoint",
    "connection",
}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL.match(node.value):
                found.append(f"{path.name}:{node.lineno}: SQL text {node.value[:40]!r}")
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in _FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno}: calls {name}()")
    return found


def test_servicers_hold_no_sql_and_no_transaction_control() -> None:
    servicers = sorted((SRC / "services").glob("*.py"))
    assert len(servicers) >= 6
    problems = [v for p in servicers for v in _violations(p)]
    assert problems == []


def test_the_servicer_check_catches_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "async def f(conn):\n"
        "    async with conn.transaction():\n"
        "        await conn.execute('SELECT 1')\n"
    )
    assert len(_violations(bad)) == 3


def _resolve(node: ast.expr, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, env)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def _query_uses(module: ModuleType) -> list[tuple[str, int, Queries, str]]:
    path = Path(module.__file__ or "")
    if path.suffix != ".py":
        return []
    tree = ast.parse(path.read_text())
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not node.attr.startswith("_"):
            owner = _resolve(node.value, vars(module))
            if isinstance(owner, Queries):
                uses.append((path.name, node.lineno, owner, node.attr))
    return uses


def test_every_named_query_used_in_src_exists() -> None:
    uses = [u for m in _modules() for u in _query_uses(m)]
    assert len(uses) > 100  # the scan found the stores' queries
    missing = [
        f"{file}:{line}: {owner._domain}.{name}"
        for file, line, owner, name in uses
        if name not in queries(owner._domain)
    ]
    assert missing == []


def test_a_misspelled_query_fails_at_once() -> None:
    with pytest.raises(AttributeError, match=r"no query 'get_tempalte' in templates\.sql"):
        _ = Queries("templates").get_tempalte
    with pytest.raises(FileNotFoundError):
        Queries("no_such_domain")
