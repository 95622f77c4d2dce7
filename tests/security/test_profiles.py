"""Tenant profiles: ``--tenant acme`` is all a user types; a bad file is one line with its key."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bulkops.budget import DEFAULT_RATE, Rate
from bulkops.cli._run import job_config
from bulkops.credentials import KEYCHAIN_SERVICE
from bulkops.errors import ConfigError
from bulkops.profiles import load_profile

from .conftest import bulkops, cli_env, one_error_line
from .keyrings import MemoryKeyring

CONFIG = """
[tenants.acme]
subdomain = "acme"
region = "eu"
rate = "6000/h"

[tenants.iru-lab]
subdomain = "lab"
region = "iru"
reserve = 2500

[tenants.plain]
subdomain = "Plain"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("BULKOPS_CONFIG", str(path))
    return path


def options(**given: object) -> dict[str, object]:
    base: dict[str, object] = {
        "db": Path("run.db"),
        "out_dir": None,
        "base_url": None,
        "subdomain": None,
        "region": "us",
        "token_file": None,
        "rate": None,
        "per_second": 45,
        "budget_db": None,
        "concurrency": 8,
    }
    return base | given


@pytest.mark.usefixtures("config")
def test_a_profile_gives_host_rate_and_keychain_entry(memory_keyring: MemoryKeyring) -> None:
    secrets = {host: str(uuid.uuid4()) for host in ("acme.api.eu.kandji.io", "lab.api.iru.com")}
    for host, secret in secrets.items():
        memory_keyring.set_password(KEYCHAIN_SERVICE, host, secret)

    acme = job_config(**options(tenant="acme"))  # type: ignore[arg-type]
    assert acme.connection.base_url == "https://acme.api.eu.kandji.io"
    assert acme.tenant == "acme.api.eu.kandji.io"
    assert acme.rate == Rate(6000, 3600.0)
    assert acme.connection.token == secrets["acme.api.eu.kandji.io"]

    lab = job_config(**options(tenant="iru-lab"))  # type: ignore[arg-type]
    assert lab.connection.base_url == "https://lab.api.iru.com"
    assert lab.rate == Rate(7500, 3600.0)  # 10,000/h less the reserve
    assert lab.connection.token == secrets["lab.api.iru.com"]

    explicit = job_config(**options(tenant="acme", rate="100/m"))  # type: ignore[arg-type]
    assert explicit.rate == Rate(100, 60.0)  # the command line wins over the profile


@pytest.mark.usefixtures("config")
def test_a_profile_without_rate_takes_the_default_and_us_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IRU_API_TOKEN", str(uuid.uuid4()))
    plain = job_config(**options(tenant="plain"))  # type: ignore[arg-type]
    assert plain.connection.base_url == "https://plain.api.kandji.io"
    assert plain.rate == DEFAULT_RATE


@pytest.mark.usefixtures("config")
def test_tenant_and_another_address_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRU_API_TOKEN", str(uuid.uuid4()))
    with pytest.raises(
        ConfigError, match="--tenant acme already names the tenant; drop --base-url"
    ):
        job_config(**options(tenant="acme", base_url="https://x.api.kandji.io"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[tenants.acme]\nsubdomain = 'acme'\nregion = 'asia'\n", "tenants.acme.region: 'asia'"),
        ("[tenants.acme]\nsubdomain = 'acme'\nregoin = 'us'\n", "tenants.acme.regoin: unknown key"),
        ("[tenants.acme]\nregion = 'us'\n", "tenants.acme.subdomain: missing"),
        ("[tenants.acme]\nsubdomain = 'ac me'\n", "tenants.acme.subdomain: 'ac me'"),
        ("[tenants.acme]\nsubdomain = 'acme'\nrate = 9000\n", "tenants.acme.rate: write it as"),
        ("[tenants.acme]\nsubdomain = 'acme'\nrate = 'fast'\n", "tenants.acme.rate: invalid rate"),
        ("[tenants.acme]\nsubdomain = 'acme'\nreserve = -1\n", "tenants.acme.reserve: -1"),
        (
            "[tenants.acme]\nsubdomain = 'acme'\nrate = '9500/h'\nreserve = 1000\n",
            "tenants.acme.rate: 9500/h does not leave the reserve of 1000/h",
        ),
        ("[tenants.beta]\nsubdomain = 'beta'\n", "no [tenants.acme] table (tenants: beta)"),
        ("[tenant.acme]\nsubdomain = 'acme'\n", ": tenant: unknown key"),
        ("[tenants.acme\nsubdomain = 'acme'\n", "not valid TOML"),
        ("token = '12'\n[tenants.acme]\nsubdomain = 'acme'\n", ": token: unknown key"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_profile("acme", path=path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and fragment in message, message
    assert "\n" not in message


def test_a_missing_config_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such config file; create it with a \[tenants"):
        load_profile("acme", path=tmp_path / "none.toml")


def test_tenant_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    env = cli_env(tmp_path, BULKOPS_CONFIG=str(path))
    secret = str(uuid.uuid4())
    stored = bulkops("auth", "set", "--tenant", "acme", env=env, cwd=tmp_path, stdin=secret)
    assert stored.returncode == 0, stored.stderr
    assert "acme.api.eu.kandji.io (profile acme)" in stored.stdout
    status = bulkops("auth", "status", "--tenant", "acme", env=env, cwd=tmp_path)
    assert status.returncode == 0 and "<- used" in status.stdout
    path.write_text(CONFIG.replace('region = "eu"', 'region = "apac"'))
    bad = bulkops("run", "job.csv", "--tenant", "acme", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert one_error_line(bad) == (
        f"error: {path}: tenants.acme.region: 'apac' is not one of us, eu, iru"
    )


def test_a_runs_tenant_finds_its_profile_so_a_resume_keeps_its_rate(config: Path) -> None:
    """Review: `resume RUN_ID` without options used the run's host but dropped the profile, so a
    run started with `--tenant iru-lab` (reserve 2500) resumed at the default rate."""
    from bulkops.profiles import profile_for

    host = load_profile("iru-lab").base_url.split("://", 1)[-1]
    assert profile_for(host) == "iru-lab"
    assert profile_for("nobody.api.kandji.io") is None
    assert profile_for(host, path=config.parent / "missing.toml") is None


@pytest.mark.usefixtures("config")
def test_select_spends_at_the_profiles_rate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    """`select` passed 9000/h when no --rate was given, over the profile's own (a tenant that
    keeps headroom for other integrations set 6000/h there): now the profile's rate holds."""
    from typer.testing import CliRunner

    import bulkops.cli._run as run_module
    from bulkops.cli import app

    memory_keyring.set_password(KEYCHAIN_SERVICE, "acme.api.eu.kandji.io", str(uuid.uuid4()))
    made: list[object] = []

    def config_only(**given: object) -> object:  # the config select would send with; no send
        made.append(job_config(**given))  # type: ignore[arg-type]
        raise ConfigError("stop here")

    monkeypatch.setattr(run_module, "job_config", config_only)
    out = tmp_path / "job.csv"
    args = ["select", "--tenant", "acme", "--action", "blankpush", "--platform", "Mac"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert isinstance(result.exception, ConfigError), result.output
    assert [c.rate for c in made] == [Rate(6000, 3600.0)]  # type: ignore[attr-defined]
