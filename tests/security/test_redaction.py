"""The token never shows: logs (any level, any argument, tracebacks), errors, reprs, debug lines."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkops.cli._log import enable_debug
from bulkops.client import Connection, KandjiClient
from bulkops.errors import AuthError, ConfigError
from bulkops.redact import MASK, RedactingFilter, RedactingFormatter, redact, remember
from tests.conftest import Tenant

from .conftest import bulkops, cli_env, one_error_line


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the ``bulkops`` logger writes through a redacting handler, at every level."""
    log = logging.getLogger("bulkops")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    flt = RedactingFilter()
    log.addFilter(flt)
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.DEBUG)
    yield buffer
    log.setLevel(level)
    log.removeHandler(handler)
    log.removeFilter(flt)


def test_remembered_secrets_and_authorization_values_are_masked() -> None:
    secret = str(uuid.uuid4())
    other = str(uuid.uuid4())  # never remembered: caught by its context only
    remember(secret)
    assert redact(f"token {secret} twice {secret}") == f"token {MASK} twice {MASK}"
    assert redact(f"Authorization: Bearer {other}") == f"Authorization: Bearer {MASK}"
    assert (
        redact(f"{{'Authorization': 'Bearer {other}'}}") == f"{{'Authorization': 'Bearer {MASK}'}}"
    )
    assert redact(f'"authorization": "{other}"') == f'"authorization": "{MASK}"'
    assert redact(f"sent bearer {other}, then") == f"sent bearer {MASK}, then"
    assert redact("device 5b1f0b9e-0a4e-4c6e-9a53-3c5d5f1e2a10 locked") == (
        "device 5b1f0b9e-0a4e-4c6e-9a53-3c5d5f1e2a10 locked"  # other UUIDs are data
    )
    remember("short")  # too short to be a token: would mask ordinary words
    assert redact("a short note") == "a short note"


@pytest.mark.parametrize(
    "text",
    [
        "token file /etc/bulkops/bearer does not exist",  # a path, not a header
        "the bearer token was refused",  # "token" is too short to be one
        r"C:\keys\bearer tokens.txt is empty",
    ],
)
def test_the_word_bearer_in_ordinary_text_keeps_the_words_after_it(text: str) -> None:
    assert redact(text) == text


def test_log_records_are_scrubbed_in_message_arguments_and_tracebacks(
    captured: io.StringIO,
) -> None:
    secret = str(uuid.uuid4())
    remember(secret)
    log = logging.getLogger("bulkops")
    log.debug("headers %s", {"Authorization": f"Bearer {secret}"})
    log.info("token is %s", secret)
    log.warning(f"f-string {secret}")
    try:
        raise RuntimeError(f"boom with {secret}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("bulkops.child").error("child %s", secret)  # a handler-level net too
    text = captured.getvalue()
    assert secret not in text
    assert text.count(MASK) == 5 and "RuntimeError: boom with" in text


def test_reprs_and_error_messages_do_not_carry_the_token() -> None:
    secret = str(uuid.uuid4())
    conn = Connection(base_url="https://acme.api.kandji.io", token=secret)
    assert secret not in repr(conn) and secret not in str(conn)
    assert "token=<redacted>" in repr(conn)
    from bulkops.job import JobConfig

    config = JobConfig(connection=conn, tenant="acme.api.kandji.io")
    assert secret not in repr(config) and secret not in str(config)
    err = AuthError(401, "Invalid token.", method="GET", path="/api/v1/devices")
    assert secret not in str(err) + repr(err)
    with pytest.raises(ConfigError) as caught:
        from bulkops.credentials import check_shape

        check_shape(secret + "x", "$IRU_API_TOKEN")
    assert secret not in str(caught.value)


async def test_debug_lines_name_the_request_never_headers_or_bodies(
    tenant: Tenant, tmp_path: Path
) -> None:
    from bulkops.budget import Budget, BudgetConfig, Rate, SendHistory

    remember(tenant.token)
    log = logging.getLogger("bulkops")
    before = list(log.handlers)
    where = enable_debug(tmp_path / "debug.log", db=tmp_path / "run.db")
    mac = next(d for d in tenant.sim.fleet.devices.values() if d["platform"] == "Mac")
    try:
        with SendHistory(tmp_path / "budget.db", tenant="t") as history:
            budget = Budget(BudgetConfig(rate=Rate(1000, 1.0), tenant="t"), history=history)
            conn = Connection(base_url=tenant.url, token=tenant.token)
            async with KandjiClient(conn, budget=budget) as client:
                await client.read("/api/v1/devices", params={"limit": 1})
                reply = await client.request(
                    "POST",
                    f"/api/v1/devices/{mac['device_id']}/action/lock",
                    json={"Message": "call IT"},
                )
    finally:
        for handler in set(log.handlers) - set(before):
            log.removeHandler(handler)
            handler.close()
        log.setLevel(logging.NOTSET)
    pin = str(reply.data["PIN"])
    text = (tmp_path / "debug.log").read_text()
    assert where == str(tmp_path / "debug.log")
    lines = text.splitlines()
    assert len(lines) == 2
    assert " DEBUG GET /api/v1/devices?limit=1 -> 200 (" in lines[0]
    assert f" DEBUG POST /api/v1/devices/{mac['device_id']}/action/lock -> 200 (" in lines[1]
    assert tenant.token not in text and "Bearer" not in text and "Authorization" not in text
    assert pin not in text and "call IT" not in text
    assert (tmp_path / "debug.log").stat().st_mode & 0o777 == 0o600


def test_the_error_line_of_the_cli_is_scrubbed(tmp_path: Path) -> None:
    # A token pasted where a manifest path goes ends up in the error message: masked there.
    secret = str(uuid.uuid4())
    result = bulkops(
        "run",
        secret,
        "--base-url",
        "http://127.0.0.1:9",
        env=cli_env(tmp_path, token=secret),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert secret not in line and f"{MASK}: no such file" in line
