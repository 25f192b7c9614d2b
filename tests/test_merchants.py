"""MerchantsService (merchant-wide settings) and the operator's rate-limit override."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from helpers import expect_error

from mktx.v1 import merchants_pb2, merchants_pb2_grpc

M = merchants_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def stub(api):
    return merchants_pb2_grpc.MerchantsServiceStub(api.channel)


def update(tz: str, etag: str = "", paths: tuple[str, ...] = ("time_zone",)):
    return M.UpdateMerchantSettingsRequest(
        settings=M.MerchantSettings(time_zone=tz),
        update_mask=FieldMask(paths=list(paths)),
        etag=etag,
    )


async def test_defaults_until_changed_then_the_change(api, stub, merchant, other_merchant):
    got = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    assert got.time_zone == "UTC"
    assert not got.HasField("update_time")
    assert got.rate_limit == M.MerchantRateLimit(
        requests_per_minute=100, burst=20, overridden=False
    )
    changed = await stub.UpdateMerchantSettings(
        update("Europe/Berlin", got.etag), metadata=api.auth(merchant)
    )
    assert changed.time_zone == "Europe/Berlin" and changed.HasField("update_time")
    assert changed.etag != got.etag
    again = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    assert again == changed
    # Another merchant's settings are its own.
    theirs = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(other_merchant)
    )
    assert theirs.time_zone == "UTC"


async def test_a_stale_etag_is_aborted(api, stub, merchant):
    first = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    await stub.UpdateMerchantSettings(update("Asia/Tokyo", first.etag), metadata=api.auth(merchant))
    await expect_error(
        stub.UpdateMerchantSettings(
            update("America/New_York", first.etag), metadata=api.auth(merchant)
        ),
        grpc.StatusCode.ABORTED,
        "ETAG_MISMATCH",
    )
    now = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    assert now.time_zone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (update("Mars/Olympus"), "settings.time_zone"),
        (update(""), "settings.time_zone"),
        (update("x" * 10_000), "settings.time_zone"),
        (update("UTC", paths=()), "update_mask"),
        (update("UTC", paths=("color",)), "update_mask.paths[0]"),
        (update("UTC", paths=("rate_limit",)), "update_mask.paths[0]"),
        (update("UTC", paths=("rate_limit.requests_per_minute",)), "update_mask.paths[0]"),
    ],
)
async def test_invalid_updates_name_the_field(api, stub, merchant, request_, field):
    err = await expect_error(
        stub.UpdateMerchantSettings(request_, metadata=api.auth(merchant)),
        INVALID,
        "VALIDATION_ERROR",
    )
    assert field in err.bad_fields
    got = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    assert got.time_zone == "UTC"  # nothing half-written


async def test_unauthenticated(api, stub):
    await expect_error(
        stub.GetMerchantSettings(M.GetMerchantSettingsRequest()), grpc.StatusCode.UNAUTHENTICATED
    )


def test_operator_sets_and_clears_a_merchants_rate_limit(api, merchant, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": api.settings.database_url,
        "MKTX_DATA_DIR": str(tmp_path),
        "MKTX_LOG_LEVEL": "WARNING",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mktx_grpc.cli",
                "merchant-limits",
                "--merchant",
                str(merchant),
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    done = cli("--per-minute", "600", "--burst", "50")
    assert done.returncode == 0, done.stderr
    assert "600 requests/min, burst 50 (override)" in done.stdout
    assert cli("--per-minute", "0").returncode == 2
    assert cli().returncode == 2
    bad = subprocess.run(
        [sys.executable, "-m", "mktx_grpc.cli", "merchant-limits", "--merchant", "nope", "--clear"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and "UUID" in bad.stderr
    cleared = cli("--clear")
    assert cleared.returncode == 0 and "(service default)" in cleared.stdout


async def test_the_override_shows_in_the_settings(api, stub, merchant, db):
    await db.execute(
        "INSERT INTO merchant_settings (merchant_id, rate_limit_per_minute, rate_limit_burst, version)"
        " VALUES (%s, 1000, NULL, 1)",
        (merchant,),
    )
    got = await stub.GetMerchantSettings(
        M.GetMerchantSettingsRequest(), metadata=api.auth(merchant)
    )
    assert got.rate_limit == M.MerchantRateLimit(
        requests_per_minute=1000, burst=20, overridden=True
    )
    assert uuid.UUID(str(merchant))
