"""`bulkops sim`: serve the simulator on loopback until Ctrl-C (a thin shell over `Simulator`)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from bulkops.sim.server import Simulator

__all__ = ["is_loopback", "main", "sim_command"]


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _write_token(path: Path, token: str) -> None:
    """Write the token to `path` with mode 0600 (created that way, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: tighten before writing
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")


async def _serve(
    sim: Simulator, *, host: str, port: int, token: str, token_file: Path | None
) -> bool:
    """Serve until Ctrl-C; False when the token file could not be written (nothing served)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim.running(host=host, port=port) as url:
        if token_file is not None:  # once the port is ours: a failed start keeps the old file
            try:
                _write_token(token_file, token)
            except OSError as exc:
                typer.echo(
                    f"error: cannot write the token file {token_file}: {exc.strerror or exc}"
                    " (choose a writable path for --token-file)",
                    err=True,
                )
                return False
        typer.echo(f"Kandji API simulator listening on {url}")
        typer.echo(
            f"  devices={len(sim.fleet.devices)} seed={sim.config.seed} "
            f"time_scale={sim.config.time_scale} limits={sim.config.second_limit}/s "
            f"{sim.config.hour_limit}/h ({sim.config.window} windows)"
        )
        if token_file is not None:
            typer.echo(f"  API token written to {token_file} (mode 0600); use it as:")
            typer.echo(
                f'  curl -H "Authorization: Bearer $(cat {token_file})" {url}/api/v1/devices'
            )
        else:
            typer.echo(f"  API token (simulator only): {token}")
            typer.echo(f'  curl -H "Authorization: Bearer <token>" {url}/api/v1/devices')
        typer.echo("Press Ctrl-C to stop.")
        sys.stdout.flush()
        await stop.wait()
    typer.echo("Simulator stopped.")
    return True


def sim_command(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback only by policy).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8765,
    devices: Annotated[int, typer.Option(help="Enrolled devices to generate.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the fleet, ids, PINs and faults.")] = 7,
    time_scale: Annotated[
        float, typer.Option(help="Virtual seconds per real second (3600: an hour per second).")
    ] = 1.0,
    hour_limit: Annotated[int, typer.Option(help="Gateway requests per hour window.")] = 10_000,
    second_limit: Annotated[int, typer.Option(help="Gateway requests per second window.")] = 50,
    sliding_window: Annotated[
        bool, typer.Option("--sliding-window", help="Sliding instead of fixed UTC windows.")
    ] = False,
    no_rate_limit_headers: Annotated[
        bool,
        typer.Option("--no-rate-limit-headers", help="Hide RateLimit-*/X-RateLimit-*/Retry-After."),
    ] = False,
    ade_devices: Annotated[int, typer.Option(help="Devices awaiting ADE enrollment.")] = 10,
    duplicate_serials: Annotated[int, typer.Option(help="Re-enrolled duplicate serials.")] = 0,
    command_delay_s: Annotated[
        float, typer.Option(help="Virtual seconds until a queued MDM command completes.")
    ] = 60.0,
    latency_s: Annotated[float, typer.Option(help="Extra latency per request (s).")] = 0.0,
    latency_jitter_s: Annotated[float, typer.Option(help="Uniform extra jitter (s).")] = 0.0,
    error_5xx_rate: Annotated[float, typer.Option(help="Share answered 500/502/503.")] = 0.0,
    reset_before_rate: Annotated[float, typer.Option(help="Share reset before handling.")] = 0.0,
    reset_after_rate: Annotated[
        float, typer.Option(help="Share applied, then reset without a response.")
    ] = 0.0,
    slow_rate: Annotated[float, typer.Option(help="Share answered after --slow-s.")] = 0.0,
    slow_s: Annotated[float, typer.Option(help="Delay of a slow response (s).")] = 30.0,
    odd_responses_rate: Annotated[
        float, typer.Option(help="Share with a mangled body (text, HTML 404, empty, truncated).")
    ] = 0.0,
    other_integration_per_window: Annotated[
        int, typer.Option(help="Requests another integration spends in every hour window.")
    ] = 0,
    ledger: Annotated[
        Path | None, typer.Option(help="Append every request to this JSON Lines file.")
    ] = None,
    fleet: Annotated[
        Path | None, typer.Option(help="Load the fleet from this JSON file, or generate it there.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="Write the API token here (mode 0600) instead of printing.")
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow binding a non-loopback interface.")
    ] = False,
) -> None:
    """Serve a simulated Kandji tenant on loopback until Ctrl-C."""
    if not is_loopback(host) and not allow_remote:
        raise typer.BadParameter(
            f"{host} is not a loopback address; the simulator binds loopback only "
            "(pass --allow-remote to override)",
            param_hint="--host",
        )
    from bulkops.sim.config import SimConfig  # here: `bulkops run` does not load the simulator
    from bulkops.sim.faults import Faults

    try:
        faults = Faults(
            latency_s=latency_s,
            latency_jitter_s=latency_jitter_s,
            error_5xx_rate=error_5xx_rate,
            reset_before_rate=reset_before_rate,
            reset_after_rate=reset_after_rate,
            slow_rate=slow_rate,
            slow_s=slow_s,
            odd_responses_rate=odd_responses_rate,
            other_integration_per_window=other_integration_per_window,
        )
        config = SimConfig(
            devices=devices,
            seed=seed,
            time_scale=time_scale,
            hour_limit=hour_limit,
            second_limit=second_limit,
            window="sliding" if sliding_window else "fixed",
            rate_limit_headers=not no_rate_limit_headers,
            faults=faults,
            ledger_path=ledger,
            fleet_path=fleet,
            ade_devices=ade_devices,
            duplicate_serials=duplicate_serials,
            command_delay_s=command_delay_s,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    from bulkops.sim.server import Simulator

    sim = Simulator(config)
    token = sim.add_token(label="cli")
    try:
        served = _run(_serve(sim, host=host, port=port, token=token, token_file=token_file))
    except OSError as exc:
        typer.echo(f"error: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        sim.close()
    if not served:
        raise typer.Exit(1)


def _run(coro: Coroutine[Any, Any, bool]) -> bool:
    """Run the server coroutine, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    """Entry point for `python -m bulkops.sim`."""
    app = typer.Typer(add_completion=False)
    app.command()(sim_command)
    app()
