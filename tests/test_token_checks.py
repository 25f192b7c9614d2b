"""Bearer tokens: a refused token says which check failed (issue 15 §1.3), the
optional maximum lifetime (issue 13 §5), and `mktx-grpc token` never inventing a
second secret."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest
from helpers import expect_error

from mktx.v1 import templates_pb2, templates_pb2_grpc
from mktx_grpc.core.auth import TokenVerifier, mint_token
from mktx_grpc.core.config import Settings
from mktx_grpc.core.errors import Unauthenticated

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
BIN = Path(sys.executable).parent
SECRET = b"test-jwt-secret-0123456789abcdef"


def claims(merchant: uuid.UUID, **extra: object) -> dict[str, object]:
    now = int(time.time())
    out: dict[str, object] = {"merchant_id": str(merchant), "sub": "t", "iat": now}
    out["exp"] = now + 600
    out.update(extra)
    return {k: v for k, v in out.items() if v is not None}


def refused(verifier: TokenVerifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    return info.value


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.replace(jwt_issuer="https://issuer.example", jwt_audience="mktx-api")


@pytest.mark.parametrize(
    ("make", "check", "words"),
    [
        (
            lambda m: jwt.encode(claims(m), b"another-secret-0123456789abcdefgh"),
            "signature",
            "signature does not verify",
        ),
        (
            lambda m: jwt.encode(claims(m, exp=int(time.time()) - 3600), SECRET),
            "expiry",
            "exp is in the past",
        ),
        (lambda m: jwt.encode(claims(m, exp=None), SECRET), "claim", "exp claim is missing"),
        (
            lambda m: jwt.encode(claims(m, merchant_id=None), SECRET),
            "claim",
            "merchant_id claim is missing",
        ),
        (
            lambda m: jwt.encode(claims(m, merchant_id="shop-1"), SECRET),
            "merchant_id",
            "merchant_id claim is not a UUID",
        ),
        (
            lambda m: jwt.encode(claims(m, nbf=int(time.time()) + 3600), SECRET),
            "not_before",
            "not valid yet",
        ),
        (
            lambda m: jwt.encode(claims(m), None, algorithm="none"),
            "algorithm",
            "not signed with HS256",
        ),
        (lambda m: "not-a-jwt", "format", "not a well-formed JWT"),
    ],
)
def test_refusal_names_the_failed_check(settings, make, check, words):
    merchant = uuid.uuid4()
    err = refused(TokenVerifier(settings), make(merchant))
    assert err.metadata == {"check": check}
    assert words in err.message
    assert err.reason == ("TOKEN_EXPIRED" if check == "expiry" else "INVALID_TOKEN")
    # Nothing secret or from the token in the message.
    assert SECRET.decode() not in err.message and str(merchant) not in err.message


def test_issuer_and_audience_checks_are_named(strict):
    merchant = uuid.uuid4()
    verifier = TokenVerifier(strict)
    wrong_iss = jwt.encode(claims(merchant, iss="https://evil.example", aud="mktx-api"), SECRET)
    err = refused(verifier, wrong_iss)
    assert err.metadata["check"] == "issuer" and "evil" not in err.message
    wrong_aud = jwt.encode(claims(merchant, iss="https://issuer.example", aud="other"), SECRET)
    err = refused(verifier, wrong_aud)
    assert err.metadata["check"] == "audience" and "other" not in err.message
    missing = jwt.encode(claims(merchant, aud="mktx-api"), SECRET)
    assert refused(verifier, missing).metadata["check"] in ("claim", "issuer")
    assert verifier.verify(mint_token(strict, merchant)).merchant_id == merchant


async def test_the_client_sees_which_check_failed(api, merchant):
    stub = templates_pb2_grpc.TemplatesServiceStub(api.channel)
    forged = jwt.encode(claims(merchant), b"another-secret-0123456789abcdefgh")
    err = await expect_error(
        stub.GetTemplate(
            templates_pb2.GetTemplateRequest(id=str(uuid.uuid4())),
            metadata=[("authorization", f"Bearer {forged}")],
        ),
        UNAUTH,
        "INVALID_TOKEN",
    )
    assert "signature does not verify" in err.message
    assert err.info is not None and err.info.metadata["check"] == "signature"


def test_year_9999_tokens_pass_without_a_maximum_lifetime(settings):
    merchant = uuid.uuid4()
    forever = jwt.encode(claims(merchant, exp=253402300799), SECRET)  # 9999-12-31
    assert TokenVerifier(settings).verify(forever).merchant_id == merchant


def test_maximum_lifetime_refuses_tokens_that_expire_too_far_ahead(settings):
    merchant = uuid.uuid4()
    capped = TokenVerifier(settings.replace(jwt_max_lifetime=3600))
    forever = jwt.encode(claims(merchant, exp=253402300799), SECRET)
    err = refused(capped, forever)
    assert err.metadata == {"check": "lifetime"} and "MKTX_JWT_MAX_LIFETIME" in err.message
    # A backdated iat does not help: exp is what is measured, from now.
    sly = jwt.encode(
        claims(merchant, iat=int(time.time()) - 10**6, exp=int(time.time()) + 7200), SECRET
    )
    assert refused(capped, sly).metadata == {"check": "lifetime"}
    # Within the maximum: accepted, and again from the cache.
    ok = mint_token(settings, merchant, ttl_seconds=1800)
    assert capped.verify(ok).merchant_id == merchant
    assert capped.verify(ok).merchant_id == merchant


def test_maximum_lifetime_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MKTX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MKTX_JWT_MAX_LIFETIME", "900")
    assert Settings.from_env().jwt_max_lifetime == 900
    monkeypatch.setenv("MKTX_JWT_MAX_LIFETIME", "soon")
    with pytest.raises(ValueError, match="MKTX_JWT_MAX_LIFETIME"):
        Settings.from_env()
    monkeypatch.setenv("MKTX_JWT_MAX_LIFETIME", "-5")
    with pytest.raises(ValueError, match="MKTX_JWT_MAX_LIFETIME"):
        Settings.from_env()


def _token_cli(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MKTX_", "X_"))}
    clean.update(env)
    return subprocess.run(
        [str(BIN / "mktx-grpc"), "token", "--merchant", str(uuid.uuid4())],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_refuses_to_invent_a_secret_elsewhere(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = _token_cli(elsewhere)
    assert res.returncode == 2 and res.stdout == ""
    assert "no JWT secret" in res.stderr and "mktx-grpc serve" in res.stderr
    assert not (elsewhere / ".data").exists()


def test_token_uses_the_servers_data_dir_secret(tmp_path):
    # What `serve` does on first start: the secrets appear in the data directory.
    server_dir = tmp_path / "server"
    data = server_dir / ".data"
    res_env = {"MKTX_DATA_DIR": str(data)}
    subprocess.run(
        [sys.executable, "-c", "from mktx_grpc.core.config import Settings; Settings.from_env()"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MKTX_")}, **res_env},
        check=True,
        timeout=60,
    )
    res = _token_cli(tmp_path, **res_env)
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip()
    secret = base64.urlsafe_b64decode((data / "jwt.secret").read_text().strip())
    server_settings = Settings(jwt_secret=secret)
    assert TokenVerifier(server_settings).verify(token)
    # The same from the server's own directory with the default data dir.
    res = _token_cli(server_dir)
    assert res.returncode == 0, res.stderr
    assert TokenVerifier(server_settings).verify(res.stdout.strip())
    assert sorted(p.name for p in data.iterdir()) == ["encryption.key", "jwt.secret"]
