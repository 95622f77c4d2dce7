"""The command line as a user meets it: subprocesses, one-line errors, documented exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bulkops.cli import app
from bulkops.cli._demo import DEMO_DEVICES, DEMO_SEED, example_jobs
from bulkops.sim import generate_fleet
from tests.conftest import env_with_token, make_sim

ROOT = Path(__file__).resolve().parents[1]


def bulkops(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkops", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def spawn(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``bulkops ARGS`` started in the background, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "bulkops", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_job(folder: Path, sim: object, count: int, action: str) -> list[str]:
    """``job.csv`` in ``folder``: the first ``count`` devices of the simulated fleet, one action."""
    ids = sorted(sim.fleet.devices)[:count]  # type: ignore[attr-defined]
    (folder / "job.csv").write_text("device_id,action\n" + "".join(f"{i},{action}\n" for i in ids))
    return ids


@pytest.fixture
def served() -> Iterator[tuple[object, str, str]]:
    sim = make_sim(devices=50)
    token = sim.add_token()
    with sim.in_thread() as url:
        yield sim, url, token


def test_a_run_and_its_resume_through_the_cli(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    ids = sorted(sim.fleet.devices)[:10]  # type: ignore[attr-defined]
    manifest = tmp_path / "job.csv"
    manifest.write_text("device_id\n" + "".join(f"{i}\n" for i in ids))
    args = ["run", str(manifest), "--action", "blankpush", "--base-url", url, "-q", "--json"]
    done = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"succeeded": 10' in done.stdout
    again = bulkops(*args[:-1], env=env_with_token(token), cwd=tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout
    # Review: with --json this line came on stdout as text, and `| jq` failed.
    shown = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    data = json.loads(shown.stdout)  # the whole of stdout is one document
    assert shown.returncode == 0 and data["already_finished"] is True, shown.stdout
    assert data["outcomes"]["succeeded"] == 10 and data["exit_code"] == 0
    # Review: a plan of the finished manifest showed "continues 10 rows … 0 to send" beside an
    # old plan.csv that still said "send" on every row.
    plan = bulkops("plan", *args[1:-2], env=env_with_token(token), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "already finished: succeeded 10 · failed 0" in plan.stdout, plan.stdout
    assert "nothing to send" in plan.stdout and "continues" not in plan.stdout
    assert sim.ledger.applied_count() == 10  # type: ignore[attr-defined]
    status = bulkops("status", cwd=tmp_path)
    assert status.returncode == 0 and "done" in status.stdout and "10/10" in status.stdout


def lock_macs(served: tuple[object, str, str], folder: Path, count: int) -> list[str]:
    """``lock.csv`` of the first ``count`` Macs, run to the end in ``folder``; their ids."""
    sim, url, token = served
    fleet = sim.fleet.devices  # type: ignore[attr-defined]
    macs = sorted(i for i in fleet if fleet[i]["platform"] == "Mac")[:count]
    (folder / "lock.csv").write_text("device_id,action\n" + "".join(f"{m},lock\n" for m in macs))
    env = env_with_token(token)
    first = bulkops("run", "lock.csv", "--base-url", url, "--yes", "-q", env=env, cwd=folder)
    assert first.returncode == 0, first.stderr
    return macs


def test_a_resume_shows_what_earlier_passes_ended_and_counts_unknown_resends_as_destructive(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    macs = lock_macs(served, tmp_path, 4)
    env = env_with_token(token)
    # As if that pass had stopped: line 3 left unknown, lines 4 and 5 never sent.
    with sqlite3.connect(tmp_path / "bulkops.db") as db:
        db.execute("UPDATE items SET state = 'unknown' WHERE line = 3")
        db.execute("UPDATE items SET state = 'pending', sent_at = NULL WHERE line IN (4, 5)")
        db.execute("UPDATE runs SET status = 'stopped'")
        (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
    db.close()
    locks = partial(sim.ledger.select, action="lock")  # type: ignore[attr-defined]
    sent = len(locks())

    # Sending the unknown one again is a third lock: above a limit of 2, refused before any write.
    resend = ["resume", run_id, "--base-url", url, "--yes", "--max-destructive", "2"]
    refused = bulkops(*resend, "--resend-unknown", env=env, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "would send 3 destructive actions (lock 3)" in refused.stderr
    assert len(locks()) == sent

    # As the summary prints it: the run knows its tenant, no --base-url needed (review).
    resumed = bulkops("resume", run_id, "--yes", "--max-destructive", "2", env=env, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr  # the unknown outcome is not a success
    assert "ended in an earlier pass, not sent again: succeeded 1 · unknown 1" in resumed.stdout
    assert f"bulkops resume {run_id} --resend-unknown" in resumed.stdout
    assert "1 outcome unknown (sent, but whether the device got it" in resumed.stdout
    assert [e.device_id for e in locks()[sent:]] == macs[2:]  # lines 4 and 5, once each

    again = bulkops("report", run_id, "--out", "again", cwd=tmp_path)  # from the db alone
    assert again.returncode == 0, again.stderr
    assert "reports: again/" in again.stdout and "1 outcome unknown" in again.stdout
    assert len((tmp_path / "again" / "results.csv").read_text().splitlines()) == 1 + 4


def test_a_plan_of_a_new_run_skips_what_the_run_it_replaces_sent(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Review: ``run --new-run --dry-run`` planned in a scratch store that held no earlier run,
    so it offered to lock again the devices the unfinished run had locked; the run skipped them."""
    sim, url, token = served
    macs = lock_macs(served, tmp_path, 4)
    manifest = tmp_path / "lock.csv"
    env = env_with_token(token)
    with sqlite3.connect(tmp_path / "bulkops.db") as db:  # as if stopped after line 3's send
        db.execute("UPDATE items SET state = 'unknown' WHERE line = 3")
        db.execute("UPDATE items SET state = 'pending', sent_at = NULL WHERE line IN (4, 5)")
        db.execute("UPDATE runs SET status = 'stopped'")
    db.close()
    manifest.write_text(manifest.read_text().replace(",lock\n", ",Lock\n"))  # edited
    locks = partial(sim.ledger.select, action="lock")  # type: ignore[attr-defined]
    sent = len(locks())

    args = ["run", "lock.csv", "--base-url", url, "--new-run", "--yes"]
    plan = bulkops(*args, "--dry-run", env=env, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    # Line 3's lock, left unknown, is found on the device: already sent too.
    skips = "skipped, 0 requests: already sent 2"
    assert skips in plan.stdout, plan.stdout
    assert "2 to send" in plan.stdout, plan.stdout
    assert len(locks()) == sent
    status = bulkops("status", cwd=tmp_path)  # a plan replaces nothing
    assert "stopped" in status.stdout and "superseded" not in status.stdout, status.stdout

    real = bulkops(*args, env=env, cwd=tmp_path)
    assert skips in real.stdout, real.stdout  # the plan said what the run did
    assert [e.device_id for e in locks()[sent:]] == macs[2:]


def test_a_plan_checks_the_devices_an_earlier_run_left_unsettled(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """A dry run works in a scratch store: it must see the tenant's unsettled sends too."""
    sim, url, token = served
    macs = lock_macs(served, tmp_path, 3)
    rows = "".join(f"{m},lock\n" for m in macs)
    env = env_with_token(token)
    with sqlite3.connect(tmp_path / "bulkops.db") as db:  # every answer lost
        db.execute("UPDATE items SET state = 'unknown'")
    db.close()
    (tmp_path / "again.csv").write_text("device_id,action,note\n" + rows.replace("\n", ",\n"))
    locks = partial(sim.ledger.select, action="lock")  # type: ignore[attr-defined]
    for command in (["plan"], ["run", "--yes"]):
        again = bulkops(*command, "again.csv", "--base-url", url, env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "skipped, 0 requests: already sent 3" in again.stdout, again.stdout
        assert "0 to send" in again.stdout, again.stdout
    assert len(locks()) == 3


def test_the_same_command_in_another_folder_finds_the_run_instead_of_sending_again(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Review: the default --db is in the current folder, so the same command typed in another
    folder (a new Terminal tab, cron in $HOME) started over and restarted 10 Macs again."""
    sim, url, token = served
    ids = write_job(tmp_path, sim, 4, "restart")
    env = env_with_token(token)
    budget = ["--budget-db", str(tmp_path / "shared-budget.db")]  # the index stays the user's
    args = ["run", str(tmp_path / "job.csv"), "--base-url", url, *budget, "--yes", "-q"]
    (tmp_path / "planned").mkdir()
    planned = bulkops("plan", *args[1:-2], env=env, cwd=tmp_path / "planned")
    assert planned.returncode == 0, planned.stderr
    index = tmp_path / "state" / "runs.jsonl"
    assert not index.exists()  # diff review: a plan's throwaway database was noted as a run
    first = bulkops(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    restarts = partial(sim.ledger.select, action="restart")  # type: ignore[attr-defined]
    assert len(restarts()) == 4
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    again = bulkops(*args, env=env, cwd=elsewhere)
    assert again.returncode == 2, again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "this manifest already ran to the end" in lines[0], lines
    assert f"in {tmp_path / 'bulkops.db'}" in lines[0] and "--new-run" in lines[0]
    assert not (elsewhere / "bulkops.db").exists()  # refused before anything was kept

    with sqlite3.connect(tmp_path / "bulkops.db") as db:  # as if it had stopped half way
        db.execute("UPDATE runs SET status = 'interrupted'")
        db.execute("UPDATE items SET state = 'pending' WHERE line > 3")
    db.close()
    unfinished = bulkops(*args, env=env, cwd=elsewhere)
    assert unfinished.returncode == 2, unfinished.stderr
    assert (
        "is unfinished in" in unfinished.stderr and "(interrupted, 2/4 done)" in unfinished.stderr
    )
    assert f"--db {tmp_path / 'bulkops.db'}" in unfinished.stderr
    assert "--new-run would start over here and send its 2 finished rows again" in (
        unfinished.stderr
    )
    plan = bulkops("plan", *args[1:-2], env=env, cwd=elsewhere)  # a plan only warns
    assert plan.returncode == 0 and "is unfinished in" in plan.stderr, plan.stderr
    forced = bulkops(*args, "--new-run", env=env, cwd=elsewhere)
    assert forced.returncode == 0, forced.stderr  # "Command already running": queued, not failed
    assert [e.device_id for e in restarts()] == ids + ids  # sent again only when asked

    # `resume RUN_ID` and `status RUN_ID` as printed, typed in the wrong folder: where it is.
    with sqlite3.connect(tmp_path / "bulkops.db") as db:
        (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
    db.close()
    for command in ("resume", "status", "report"):
        lost = bulkops(command, run_id, env=env, cwd=elsewhere)
        assert lost.returncode == 2, lost.stderr
        assert f"run {run_id} is in {tmp_path / 'bulkops.db'}: pass --db" in lost.stderr


def test_a_run_id_prefix_of_several_runs_lists_them() -> None:
    """Review: `status 20261206-14` said "no run matches" when two runs matched."""
    from bulkops.cli._common import no_such_run

    runs = ["20261206-140001-aaaa", "20261206-141502-bbbb", "20261205-090000-cccc"]
    error = str(no_such_run(Path("x.db"), "20261206-14", runs))
    assert error == (
        "'20261206-14' matches 2 runs in x.db (20261206-140001-aaaa, 20261206-141502-bbbb); "
        "give more of the id"
    )
    assert "(runs: 20261206-140001-aaaa" in str(no_such_run(Path("x.db"), "2025", runs))


@pytest.mark.parametrize(
    ("args", "env_token", "code", "fragment"),
    [
        (["run", "missing.csv"], True, 2, "missing.csv: no such file"),
        (["run", "job.csv"], False, 2, "no API token"),
        (["run", "job.csv", "--token", "abc"], True, 2, "--token is not accepted"),
        (["run", "job.csv", "--rate", "lots"], True, 2, "--rate 'lots'"),
        (["run", "job.csv", "--window", "late"], True, 2, "--window"),
        (["run", "job.csv", "--base-url", "http://example.com"], True, 2, "plain http"),
        (["run", "bad.csv"], True, 2, "bad.csv:3:"),
        (["run", "lock.csv"], True, 2, "pass --yes to confirm"),
        (["run", "off.csv"], True, 2, "this run would send shutdown to 1 device"),  # no power-on
        (["resume", "nope"], True, 2, "bulkops.db: no such database"),
        (["plan", "job.csv", "--out", "job.csv/sub"], True, 2, "job.csv/sub: Not a directory"),
        (["run", "job.csv", "--db", "job.csv"], True, 2, "--db job.csv looks like a manifest"),
        (["run", "job.csv", "--db", ""], True, 2, "--db . is a folder"),
        (["run", "job.csv", "--max-destructive", "-1"], True, 2, "--max-destructive -1: use 0"),
        (["run", "."], True, 2, ". is a folder; give the path to a CSV"),
    ],
)
def test_user_mistakes_are_one_line_with_the_documented_code(
    served: tuple[object, str, str],
    tmp_path: Path,
    args: list[str],
    env_token: bool,
    code: int,
    fragment: str,
) -> None:
    sim, url, token = served
    ids = sorted(sim.fleet.devices)  # type: ignore[attr-defined]
    macs = [i for i in ids if sim.fleet.devices[i]["platform"] == "Mac"]  # type: ignore[attr-defined]
    (tmp_path / "job.csv").write_text(f"device_id,action\n{ids[0]},blankpush\n")
    (tmp_path / "bad.csv").write_text(f"device_id,action\n{ids[0]},blankpush\n{ids[1]},explode\n")
    (tmp_path / "lock.csv").write_text(f"device_id,action\n{macs[0]},lock\n")
    (tmp_path / "off.csv").write_text(f"device_id,action\n{macs[0]},shutdown\n")
    env = (
        env_with_token(token)
        if env_token
        else {k: v for k, v in env_with_token(token).items() if k != "IRU_API_TOKEN"}
    )
    if "--base-url" not in args:
        args = [*args, "--base-url", url]
    result = bulkops(*args, env=env, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert [e for e in sim.ledger.entries if e.method != "GET"] == []  # type: ignore[attr-defined]
    assert sorted(p.name for p in tmp_path.glob("bulkops.db*")) == []  # no empty database left


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]
    assert len(commands) >= 9
    missing = [c for c in commands if not re.search(rf"`bulkops {c}\b", readme)]
    assert missing == [], f"document these commands in README.md: {missing}"


def test_readme_first_screen_gives_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```sh") + 1 : readme.index("```sh") + 3]
    assert "bulkops demo" in block[0]
    assert "pytest" in block[1]
    assert block[1] in (ROOT / ".ci" / "run").read_text()


def test_example_jobs_match_the_simulators_default_tenant() -> None:
    expected = example_jobs(generate_fleet(devices=DEMO_DEVICES, seed=DEMO_SEED))
    for name, text in expected.items():
        assert (ROOT / "jobs" / name).read_text() == text, f"regenerate jobs/{name}"


def test_actions_table_lists_every_action_with_its_permission() -> None:
    from bulkops.actions import ACTIONS

    result = bulkops("actions")
    assert result.returncode == 0
    for action in ACTIONS.values():
        assert re.search(
            rf"^{action.name}\s.*{re.escape(action.permission)}", result.stdout, re.M
        ), action.name


def free_port() -> int:
    """A loopback port nobody listens on (until a test binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def python_c(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter: what it imports starts from nothing."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_facade_exports_every_public_name_lazily() -> None:
    code = (
        "import sys, bulkops; assert 'aiohttp' not in sys.modules; "
        "assert sorted(bulkops.__all__) == bulkops.__all__; "
        "[getattr(bulkops, n) for n in bulkops.__all__]; print('ok')"
    )
    result = python_c(code)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_command_line_loads_neither_the_simulator_nor_pydantic_before_a_command_runs() -> None:
    # Start-up cost (issue 7): `bulkops run` registers `sim` but must not generate fleets or
    # import pydantic (typer 0.29 does; pyproject keeps typer below it).
    code = (
        "import io, sys, contextlib, bulkops.cli, bulkops.sim; bulkops.sim.Faults\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    bulkops.cli.app(['actions'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bulkops.sim.', 'pydantic'))))"
    )
    result = python_c(code)
    assert result.stdout.strip() == "['bulkops.sim.cli', 'bulkops.sim.faults']", result.stderr


def test_a_quiet_run_loads_rich_only_to_print_its_result() -> None:
    # Start-up cost (issue 7): rich takes ~40 ms to import and a `--quiet` run shows nothing
    # before its first request, so neither the consoles nor the quiet progress display load it.
    code = (
        "import sys, bulkops.cli, bulkops.job\n"
        "from bulkops.cli._common import err, out\n"
        "from bulkops.cli._render import Renderer\n"
        "with Renderer(quiet=True) as show: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
        "err.print('shown')\n"
        "print('rich.console' in sys.modules)"
    )
    result = python_c(code)
    assert result.stdout.split() == ["[]", "True"], result.stderr
    assert result.stderr.strip() == "shown"


def test_plan_of_destructive_work_confirms_nothing_and_sends_nothing(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    mac = next(i for i, d in sim.fleet.devices.items() if d["platform"] == "Mac")  # type: ignore[attr-defined]
    (tmp_path / "lock.csv").write_text(f"device_id,action\n{mac},lock\n")
    for args in (["plan", "lock.csv"], ["run", "lock.csv", "--dry-run"]):
        result = bulkops(*args, "--base-url", url, env=env_with_token(token), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "confirmed" not in result.stdout + result.stderr
        assert "lock" in result.stdout
    assert [e for e in sim.ledger.entries if e.method != "GET"] == []  # type: ignore[attr-defined]


def test_a_plan_keeps_nothing_and_does_not_wait_for_the_run_holding_the_database(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    from bulkops.store import Store
    from bulkops.store._lock import RunLock

    sim, url, token = served
    write_job(tmp_path, sim, 5, "restart")
    db = tmp_path / "db" / "bulkops.db"
    Store(db).close()
    lock = RunLock(db)  # as a run in progress on this database holds it
    lock.acquire()
    before = sorted(p.name for p in db.parent.iterdir())
    try:
        args = ["plan", "job.csv", "--base-url", url, "--db", str(db), "--out", "plan"]
        result = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    assert "restart" in result.stdout
    assert len((tmp_path / "plan" / "plan.csv").read_text().splitlines()) == 6
    store = Store(db)
    try:
        assert store.runs() == []
    finally:
        store.close()
    assert sorted(p.name for p in db.parent.iterdir()) == before  # no scratch file left behind


def test_a_plan_with_no_database_yet_creates_none(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    write_job(tmp_path, sim, 3, "blankpush")
    for args in (
        ["plan", "job.csv"],
        ["run", "job.csv", "--dry-run"],
        ["plan", "job.csv", "--db", "not/yet/bulkops.db"],
    ):
        result = bulkops(*args, "--base-url", url, env=env_with_token(token), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "blankpush" in result.stdout
        leftovers = sorted(p.name for p in tmp_path.iterdir() if "bulkops.db" in p.name)
        assert leftovers == [], args  # nothing to continue: nothing created, nothing left
        assert not (tmp_path / "not").exists(), args  # nor the folder of a --db not made yet


def on_a_terminal(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``bulkops ARGS`` with stderr on a pseudo-terminal, as in Terminal.app: the live display
    is on. Returns the exit code, stdout, and what the terminal showed."""
    master, slave = pty.openpty()
    shown: list[bytes] = []

    def drain() -> None:  # a full terminal buffer would block the child
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the child has closed its end
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bulkops", *args],
            cwd=cwd,
            env={**env, "TERM": "xterm-256color", "COLUMNS": "100"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=120,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return proc.returncode, proc.stdout, b"".join(shown).decode(errors="replace")


def until_asked(master: int) -> bytes:
    """What the terminal showed up to the confirmation question (at most a minute)."""
    shown = b""
    deadline = time.monotonic() + 60
    while b"to go on: " not in shown and time.monotonic() < deadline:
        if select.select([master], [], [], 1.0)[0]:
            shown += os.read(master, 4096)
    assert b"to go on: " in shown, shown.decode(errors="replace")
    return shown


def test_the_question_before_destructive_work_stays_on_the_terminal(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """A person at a terminal: nothing draws over the plan or the question while it waits."""
    sim, url, token = served
    fleet = sim.fleet.devices  # type: ignore[attr-defined]
    mac = next(i for i in sorted(fleet) if fleet[i]["platform"] == "Mac")
    (tmp_path / "lock.csv").write_text(f"device_id,action\n{mac},lock\n")
    master, slave = pty.openpty()
    env = {**env_with_token(token), "TERM": "xterm-256color", "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkops", "run", "lock.csv", "--base-url", url],
        cwd=tmp_path,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    try:
        shown = until_asked(master)
        asked = shown.index(b"to go on: ") + len(b"to go on: ")
        settle = time.monotonic() + 1.5  # a live display would redraw 10 times a second
        while time.monotonic() < settle:
            if select.select([master], [], [], 0.2)[0]:
                shown += os.read(master, 4096)
        assert shown[asked:] == b"", shown[asked:]  # the question was left alone
        os.write(master, b"no\r")
        assert proc.wait(timeout=60) == 2
    finally:
        proc.kill()
        os.close(master)
    assert sim.ledger.select(action="lock") == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_kill_or_a_closed_window_at_the_question_stops_at_once(
    served: tuple[object, str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """Review: SIGTERM and SIGHUP were not seen while the question waited (the process was
    still there 39 s later, and a run stayed behind). They now end it as Ctrl-C does: nothing
    sent, no run left to resume."""
    sim, url, token = served
    fleet = sim.fleet.devices  # type: ignore[attr-defined]
    mac = next(i for i in sorted(fleet) if fleet[i]["platform"] == "Mac")
    (tmp_path / "lock.csv").write_text(f"device_id,action\n{mac},lock\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bulkops", "run", "lock.csv", "--base-url", url],
        cwd=tmp_path,
        env={**env_with_token(token), "TERM": "dumb"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    try:
        until_asked(master)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 2  # not confirmed, as after Ctrl-C there
    finally:
        proc.kill()
        os.close(master)
    assert sim.ledger.select(action="lock") == []  # type: ignore[attr-defined]
    assert not (tmp_path / "bulkops.db").exists()  # its run is not left behind to resume


def test_plan_and_run_work_with_a_terminal_for_their_progress(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    ids = write_job(tmp_path, sim, 20, "blankpush")
    for command in ("plan", "run"):
        code, stdout, shown = on_a_terminal(
            command, "job.csv", "--base-url", url, env=env_with_token(token), cwd=tmp_path
        )
        assert code == 0, shown
        assert "Traceback" not in shown and "TypeError" not in shown, shown
        assert "blankpush" in stdout
    assert sim.ledger.applied_count() == len(ids)  # type: ignore[attr-defined]
    assert "succeeded 20" in stdout


def test_a_minified_json_manifest_runs(served: tuple[object, str, str], tmp_path: Path) -> None:
    """``json.dump`` writes every item on one line: each still gets its own key in the run."""
    sim, url, token = served
    ids = sorted(sim.fleet.devices)[:3]  # type: ignore[attr-defined]
    items = [{"device_id": i, "action": "blankpush"} for i in ids]
    (tmp_path / "job.json").write_text(json.dumps({"items": items}))
    result = bulkops(
        "run", "job.json", "--base-url", url, "-q", env=env_with_token(token), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded 3" in result.stdout
    assert sim.ledger.applied_count() == 3  # type: ignore[attr-defined]


def test_a_tenant_that_cannot_be_reached_leaves_every_item_pending_for_the_resume(
    tmp_path: Path,
) -> None:
    """Nothing reached the API, so nothing is final: no item failed, none left in flight."""
    port = free_port()  # nobody listens there, until the simulator binds it
    sim = make_sim(devices=30)
    token = sim.add_token()
    ids = write_job(tmp_path, sim, 8, "restart")  # must not run twice
    args = ["run", "job.csv", "--base-url", f"http://127.0.0.1:{port}", "--yes", "-q"]
    down = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    assert down.returncode == 3, down.stderr
    assert "items not sent stay pending" in down.stderr
    assert "pending 8" in down.stdout and "failed 0" in down.stdout
    assert "sending" not in down.stdout
    with sim.in_thread(port=port):
        up = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert "succeeded 8" in up.stdout
    for device_id in ids:
        assert sim.ledger.applied_count(device_id, "restart") == 1  # type: ignore[attr-defined]


def test_a_plan_that_needs_no_lookups_still_proves_the_token_and_the_host(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    write_job(tmp_path, sim, 3, "blankpush")  # device ids: nothing to look up
    plan = ["plan", "job.csv"]
    wrong = bulkops(*plan, "--base-url", url, env=env_with_token(str(uuid.uuid4())), cwd=tmp_path)
    assert wrong.returncode == 3, wrong.stderr
    assert "the API token was refused" in wrong.stderr and len(wrong.stderr.splitlines()) == 1
    down = f"http://127.0.0.1:{free_port()}"
    gone = bulkops(*plan, "--base-url", down, env=env_with_token(token), cwd=tmp_path)
    assert gone.returncode == 3, gone.stderr
    assert f"cannot reach the tenant at {down}" in gone.stderr
    good = bulkops(*plan, "--base-url", url, env=env_with_token(token), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "requests: 1 reads done · 3 writes to send" in good.stdout
    for args in ([*plan, "--json"], ["run", "job.csv", "--dry-run", "--json"]):
        shown = bulkops(*args, "--base-url", url, env=env_with_token(token), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)  # the whole of stdout is one document
        assert data["actions"] == {"blankpush": {"rows": 3, "to_send": 3, "destructive": False}}
        assert data["requests"] == {"reads_done": 1, "writes": 3, "read_backs": 0}
    assert sim.ledger.select(method="POST") == []  # type: ignore[attr-defined]


def test_select_reads_platforms_in_any_case_and_never_replaces_a_manifest_unasked(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    macs = [d for d in sim.fleet.devices.values() if d["platform"] == "Mac"]  # type: ignore[attr-defined]
    env = env_with_token(token)
    select = ["select", "--action", "blankpush", "--out", "job.csv", "--base-url", url]
    first = bulkops(*select, "--platform", "mac", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"{len(macs)} devices written to job.csv" in first.stdout
    written = (tmp_path / "job.csv").read_bytes()

    # (arguments, the one line it must print); none of them touches job.csv
    refused = [
        (["--platform", "Mac"], "job.csv exists; pass --force to replace it"),
        (["--platform", "Mac", "--tag", "no-such-tag", "--force"], "no device in the tenant"),
        (["--platform", "Windows"], "--platform 'Windows': use Mac, iPhone, iPad or AppleTV"),
        (["--blueprint", "Engineering Mac", "--force"], "did you mean 'Engineering Macs'?"),
    ]
    for extra, fragment in refused:
        result = bulkops(*select, *extra, env=env, cwd=tmp_path)
        assert result.returncode == 2, (extra, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (extra, result.stderr)
    wrong = bulkops(
        *select, "--platform", "Mac", "--force", env=env_with_token(str(uuid.uuid4())), cwd=tmp_path
    )
    assert wrong.returncode == 3 and "the API token was refused" in wrong.stderr, wrong.stderr
    typo = [*select[:1], "--action", "lok", *select[3:], "--platform", "Mac", "--force"]
    result = bulkops(*typo, env=env, cwd=tmp_path)
    assert result.returncode == 2 and "did you mean 'lock'?" in result.stderr, result.stderr
    assert (tmp_path / "job.csv").read_bytes() == written
    assert not (tmp_path / "job.csv.partial").exists()


def test_under_nohup_a_hangup_does_not_stop_the_run(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    write_job(tmp_path, sim, 40, "blankpush")
    run = subprocess.Popen(
        [sys.executable, "-m", "bulkops", "run", "job.csv", "--base-url", url, "--rate", "4/s"],
        cwd=tmp_path,
        env=env_with_token(token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # what nohup does
    )
    deadline = time.time() + 30
    while not sim.ledger.entries and time.time() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    run.send_signal(signal.SIGHUP)
    time.sleep(4.0)  # a stop would end it in ~2 s (the workers queued on the budget); 40 take 10
    still = run.poll() is None
    run.send_signal(signal.SIGINT)  # Ctrl-C still stops it, in order
    _, stderr = run.communicate(timeout=60)
    assert still, stderr
    assert run.returncode == 130, stderr


def test_a_closed_terminal_window_stops_the_run_in_order_and_exits_130(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Its stdout and stderr are a terminal that is gone: printing must not fail the exit."""
    sim, url, token = served
    write_job(tmp_path, sim, 40, "blankpush")
    master, slave = pty.openpty()
    run = subprocess.Popen(
        [sys.executable, "-m", "bulkops", "run", "job.csv", "--base-url", url, "--rate", "4/s"],
        cwd=tmp_path,
        env={**env_with_token(token), "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    deadline = time.time() + 30
    while not sim.ledger.entries and time.time() < deadline:  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
    os.close(master)  # the window closes: every later write to the terminal fails (EIO)
    run.send_signal(signal.SIGHUP)
    run.send_signal(signal.SIGHUP)  # the shell's, then the kernel's
    assert run.wait(timeout=60) == 130
    audit = (tmp_path / "bulkops.db.audit.jsonl").read_text().splitlines()
    assert json.loads(audit[-1])["exit_code"] == 130, audit[-1]
    db = sqlite3.connect(tmp_path / "bulkops.db")
    states = {s for (s,) in db.execute("SELECT DISTINCT state FROM items")}
    db.close()
    assert "sending" not in states  # nothing left in flight


def test_an_edited_manifest_of_an_unfinished_run_is_refused_until_new_run(
    tmp_path: Path,
) -> None:
    """Re-saved (here with CRLF) after a stop, it is new content: a new run would send its rows
    again, the half-sent ones too. The command says which run to finish instead."""
    port = free_port()
    sim = make_sim(devices=30)
    token = sim.add_token()
    write_job(tmp_path, sim, 3, "restart")
    args = ["run", "job.csv", "--base-url", f"http://127.0.0.1:{port}", "--yes", "-q"]
    first = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    assert first.returncode == 3, first.stderr  # stopped: the tenant did not answer
    manifest = tmp_path / "job.csv"
    manifest.write_bytes(manifest.read_bytes().replace(b"\n", b"\r\n"))
    again = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "job.csv changed since run" in lines[0], again.stderr
    assert "(aborted, 0/3 done)" in lines[0] and "bulkops resume" in lines[0]
    forced = bulkops(*args, "--new-run", env=env_with_token(token), cwd=tmp_path)
    assert forced.returncode == 3, forced.stderr  # a new run: it got as far as sending
    assert "changed since" not in forced.stderr
    # The new run replaces the old: resuming that too would send the same rows twice.
    found = re.search(r"changed since run (\S+)", lines[0])
    assert found is not None
    old_id = found.group(1)
    assert f"run {old_id} of job.csv (aborted) is replaced by this run" in forced.stderr
    status = bulkops("status", old_id, env=env_with_token(token), cwd=tmp_path)
    assert "superseded" in status.stdout and "bulkops resume" not in status.stdout, status.stdout
    assert "replaced by run" in status.stdout, status.stdout
    report = bulkops("report", old_id, cwd=tmp_path)
    assert "3 rows not sent by this run: run" in report.stdout, report.stdout
    assert "bulkops resume" not in report.stdout, report.stdout
    resume = ["resume", old_id, "--base-url", f"http://127.0.0.1:{port}", "-q"]
    refused = bulkops(*resume, env=env_with_token(token), cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and f"run {old_id} was replaced by run" in lines[0], refused.stderr
    assert "nothing was sent" in lines[0]


def test_brackets_in_what_the_user_wrote_show_as_written(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("device_id,[asset_tag]\n")
    env = env_with_token("00000000-0000-4000-8000-000000000000")
    result = bulkops("plan", "bad.csv", "--base-url", "http://127.0.0.1:9", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "'[asset_tag]'" in result.stderr  # not read as rich markup and dropped


def test_a_second_sender_on_the_same_database_is_refused(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Two processes on one run would send its items twice: the second is refused at once."""
    sim, url, token = served
    ids = write_job(tmp_path, sim, 40, "restart")
    args = ["run", "job.csv", "--base-url", url, "--rate", "20/s", "--yes", "-q"]
    args += ["--max-destructive", "40"]
    first = spawn(*args, env=env_with_token(token), cwd=tmp_path)
    deadline = time.time() + 30
    while not sim.ledger.select(action="restart") and time.time() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.02)
    second = bulkops(*args, env=env_with_token(token), cwd=tmp_path)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    assert "is in use by bulkops (pid" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    for device_id in ids:  # each restart exactly once
        assert sim.ledger.applied_count(device_id, "restart") == 1  # type: ignore[attr-defined]


def test_status_counts_the_requests_of_a_run_while_it_goes(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    from bulkops.store import Store

    sim, url, token = served
    ids = write_job(tmp_path, sim, 40, "blankpush")
    args = ["run", "job.csv", "--base-url", url, "--rate", "10/s", "-q"]
    run = spawn(*args, env=env_with_token(token), cwd=tmp_path)
    seen: list[tuple[str, int]] = []  # (status, requests) while it runs
    deadline = time.time() + 30
    while run.poll() is None and time.time() < deadline:
        if (tmp_path / "bulkops.db").exists():
            store = Store(tmp_path / "bulkops.db")
            try:
                seen += [(r.status, r.requests) for r in store.runs()]
            finally:
                store.close()
        time.sleep(0.2)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    live = [n for status, n in seen if status == "running"]
    assert live and 0 < max(live) < len(ids), seen  # counted while going, before the end
    status = bulkops("status", cwd=tmp_path)
    assert f"requests {len(ids)} " in status.stdout, status.stdout


def test_status_tells_a_killed_run_from_a_running_one(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    write_job(tmp_path, sim, 40, "blankpush")
    run = spawn(
        "run", "job.csv", "--base-url", url, "--rate", "5/s", "-q",
        env=env_with_token(token), cwd=tmp_path,
    )  # fmt: skip
    deadline = time.time() + 30
    while not sim.ledger.entries and time.time() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    live = bulkops("status", cwd=tmp_path)
    run.kill()  # kill -9: the run stays "running" in the database
    run.communicate(timeout=30)
    gone = bulkops("status", cwd=tmp_path)
    assert " running " in live.stdout, live.stdout
    assert " interrupted " in gone.stdout and " running " not in gone.stdout, gone.stdout
    assert "to finish it: bulkops resume " in gone.stdout and "to finish" not in live.stdout


def test_unreachable_tenant_and_refused_token_say_what_to_check(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    ids = sorted(sim.fleet.devices)  # type: ignore[attr-defined]
    (tmp_path / "sn.csv").write_text(
        f"serial_number,action\n{sim.fleet.devices[ids[0]]['serial_number']},blankpush\n"  # type: ignore[attr-defined]
    )
    dead = bulkops(
        "plan",
        "sn.csv",
        "--base-url",
        "http://127.0.0.1:9",
        env=env_with_token(token),
        cwd=tmp_path,
    )
    assert dead.returncode == 3
    assert "cannot reach the tenant at http://127.0.0.1:9" in dead.stderr
    assert len(dead.stderr.strip().splitlines()) == 1
    wrong = env_with_token("11111111-2222-3333-4444-555555555555")
    refused = bulkops("plan", "sn.csv", "--base-url", url, env=wrong, cwd=tmp_path)
    assert refused.returncode == 3 and "token was refused" in refused.stderr
    status = bulkops("status", cwd=tmp_path)  # a failed plan keeps no run behind, nor a database
    assert "bulkops.db: no such database" in status.stderr
    assert not (tmp_path / "bulkops.db").exists()


def test_a_finished_run_with_failures_still_exits_1(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    sim, url, token = served
    ok = next(i for i, d in sim.fleet.devices.items() if d["platform"] == "Mac")  # type: ignore[attr-defined]
    (tmp_path / "j.csv").write_text(
        f"device_id,action\n{ok},blankpush\n{ids_missing()},blankpush\n"  # the second: 404
    )
    first = bulkops(
        "run", "j.csv", "--base-url", url, "-q", env=env_with_token(token), cwd=tmp_path
    )
    assert first.returncode == 1, first.stderr
    again = bulkops(
        "run", "j.csv", "--base-url", url, "-q", env=env_with_token(token), cwd=tmp_path
    )
    assert again.returncode == 1 and "already finished: succeeded 1 · failed 1" in again.stdout


def ids_missing() -> str:
    """A well-formed device id no tenant has."""
    return "00000000-0000-4000-8000-00000000dead"


def test_a_rate_above_the_tenant_cap_is_warned_about(tmp_path: Path) -> None:
    from bulkops.cli._run import job_config

    (tmp_path / "tok").write_text("11111111-2222-3333-4444-555555555555")
    (tmp_path / "tok").chmod(0o600)
    common = {
        "db": tmp_path / "d.db",
        "out_dir": None,
        "subdomain": None,
        "region": "us",
        "token_file": tmp_path / "tok",
        "per_second": 45,
        "budget_db": None,
        "concurrency": 1,
    }
    import contextlib
    import io

    from bulkops.cli._common import err

    for url, warned in (("https://acme.api.kandji.io", True), ("http://127.0.0.1:8765", False)):
        with contextlib.redirect_stderr(io.StringIO()) as buf:
            err.file = buf
            try:
                job_config(base_url=url, rate="20000/h", **common)  # type: ignore[arg-type]
            finally:
                err.file = sys.stderr
        assert ("above the tenant's cap of 10000/h" in buf.getvalue()) is warned, url


def test_profile_writes_where_the_time_went_and_prints_the_top(tmp_path: Path) -> None:
    import pstats

    result = bulkops("--profile", "prof.out", "actions", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = pstats.Stats(str(tmp_path / "prof.out"))
    assert any(name == "actions" for _, _, name in stats.stats)  # type: ignore[attr-defined]
    assert (tmp_path / "prof.out").stat().st_mode & 0o777 == 0o600
    top = [line for line in result.stderr.splitlines() if " s own " in line]
    assert result.stderr.startswith("profile: prof.out") and len(top) == 12, result.stderr


def test_ctrl_c_while_rows_are_resolved_stops_at_once(tmp_path: Path) -> None:
    """Review: Ctrl-C during the lookups (the inventory) said "nothing will be sent
    once the rows are resolved" and kept reading; a second Ctrl-C did nothing either. Only
    reads are in flight then: the first Ctrl-C stops the command (here each read takes 3 s)."""
    from bulkops.sim import Faults

    slow = frozenset({("GET", "/api/v1/devices")})  # the inventory read
    sim = make_sim(devices=30, faults=Faults(latency_s=3.0, routes=slow))
    token = sim.add_token()
    fleet = sim.fleet.devices
    rows = "".join(f"{i},{fleet[i]['serial_number']},blankpush\n" for i in sorted(fleet)[:5])
    (tmp_path / "job.csv").write_text("device_id,serial_number,action\n" + rows)
    with sim.in_thread() as url:
        run = spawn(
            "run", "job.csv", "--base-url", url, "-q", env=env_with_token(token), cwd=tmp_path
        )
        port = int(url.rsplit(":", 1)[1])
        deadline = time.time() + 30
        while not _connected_to(port) and time.time() < deadline:
            time.sleep(0.02)  # the inventory read is on its way: the signal handlers are set
        assert not sim.ledger.entries  # the read is in flight, not answered
        started = time.monotonic()
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        took = time.monotonic() - started
        while not sim.ledger.entries and time.time() < deadline:
            time.sleep(0.05)  # let the simulator finish the read it was holding
    assert run.returncode == 130, err
    assert took < 2.5, took  # not the 3 s of the read in flight
    assert "stopped while the rows were resolved (reads only); nothing was sent" in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not sim.ledger.select(method="POST")
    # Never approved: nothing is kept (no run to resume by mistake, no empty database).
    assert sorted(p.name for p in tmp_path.glob("bulkops.db*")) == []


def test_resume_alone_checks_db_before_it_opens_it(tmp_path: Path) -> None:
    """Review: `resume RUN --db job.csv`, with no tenant given, opened the manifest as a
    database (an empty file became SQLite; a real one turned 0600) before any check."""
    job = tmp_path / "job.csv"
    job.write_text("device_id,action\n")
    job.chmod(0o644)
    before = job.read_bytes()
    env = {k: v for k, v in env_with_token("x").items() if k != "BULKOPS_BASE_URL"}
    result = bulkops("resume", "x", "--db", "job.csv", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--db job.csv looks like a manifest" in result.stderr
    assert job.read_bytes() == before and job.stat().st_mode & 0o777 == 0o644


def _connected_to(port: int) -> bool:
    """Whether a TCP connection to ``port`` on this machine is established (Linux)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for row in fh.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def test_without_a_terminal_progress_is_a_timestamped_line_a_minute(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Review: run from cron or into a log file, a 10-minute migration wrote its plan and then
    nothing until the end. Without a terminal, progress is one line a minute, in UTC."""
    from collections import Counter

    from bulkops.cli._render import Renderer
    from bulkops.engine import Progress

    p = Progress(run_id="20261206-150000-abcd", total=1993)
    p.counts = Counter(succeeded=480, failed=2, skipped=18)
    p.requests, p.window_left, p.eta_s = 520, 8400, 312.0
    with Renderer(quiet=False, log_every_s=3600.0) as render:
        render(p)  # within the first interval: a short run logs no progress
    assert capsys.readouterr().err == ""
    with Renderer(quiet=False, log_every_s=0.0) as render:
        render(p)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ 20261206-150000-abcd: 500/1993 done · ok 480 · "
        r"failed 2 · skipped 18 · unknown 0 · requests 520 \(429s 0\) · window left 8400 · "
        r"ETA 5m 12s",
        lines[0],
    ), lines[0]
    with Renderer(quiet=False, log_every_s=0.0) as render:
        render(p)
        p.note = "canary: waiting for the first 5 items"
        render(p)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[1].endswith("· canary: waiting for the first 5 items")
    with Renderer(quiet=True, log_every_s=0.0) as render:
        render(p)
    assert capsys.readouterr().err == ""


def test_a_report_folder_of_another_run_is_refused_before_anything_is_sent(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Review: two lock runs given the same --out: the second replaced secrets.csv, and the
    first run's PINs, already cleared from the database, were lost for good. A folder holding
    another run's reports is now refused in one line, before anything is sent."""
    sim, url, token = served
    fleet = sim.fleet.devices  # type: ignore[attr-defined]
    macs = sorted(i for i in fleet if fleet[i]["platform"] == "Mac")[:6]
    env = env_with_token(token)
    for name, part in (("a.csv", macs[:3]), ("b.csv", macs[3:])):
        (tmp_path / name).write_text("device_id,action\n" + "".join(f"{m},lock\n" for m in part))
    run = ["--base-url", url, "--yes", "-q", "--out", "shared"]
    first = bulkops("run", "a.csv", *run, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    secrets = (tmp_path / "shared" / "secrets.csv").read_bytes()
    locks = partial(sim.ledger.select, action="lock", method="POST")  # type: ignore[attr-defined]
    assert len(locks()) == 3

    for args in (["run", "b.csv", *run], ["plan", "b.csv", "--base-url", url, "--out", "shared"]):
        second = bulkops(*args, env=env, cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "shared holds the reports of run " in lines[0], lines
        assert "choose another --out" in lines[0]
    assert len(locks()) == 3  # nothing sent
    assert (tmp_path / "shared" / "secrets.csv").read_bytes() == secrets
    (run_b,) = [
        r for r in sqlite3.connect(tmp_path / "bulkops.db").execute("SELECT count(*) FROM runs")
    ]
    assert run_b == (1,)  # the refused run is not left behind to resume

    again = bulkops("run", "b.csv", *run[:-1], "others", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(locks()) == 6
    mine = tmp_path / "mine"  # a folder of the user's own files is not written over either
    mine.mkdir(mode=0o755)
    (mine / "results.csv").write_text("my notes\n")
    (tmp_path / "c.csv").write_text(f"device_id,action\n{sorted(fleet)[0]},blankpush\n")
    third = bulkops("run", "c.csv", "--base-url", url, "-q", "--out", "mine", env=env, cwd=tmp_path)
    assert third.returncode == 2 and "report files of another run" in third.stderr, third.stderr
    assert (mine / "results.csv").read_text() == "my notes\n"


def test_a_plan_says_which_devices_got_the_same_unsafe_action_lately(
    served: tuple[object, str, str], tmp_path: Path
) -> None:
    """Review: `--new-run` of a finished erase sent the erase again with no word that these
    Macs had been erased minutes before. A deliberate second one is the admin's call, so the
    plan and the run say it, naming the earlier run (and its --db when it is another)."""
    sim, url, token = served
    fleet = sim.fleet.devices  # type: ignore[attr-defined]
    macs = sorted(i for i in fleet if fleet[i]["platform"] == "Mac")[:4]
    env = env_with_token(token)
    (tmp_path / "a.csv").write_text(
        "device_id,action\n" + "".join(f"{m},restart\n" for m in macs[:3])
    )
    first = bulkops(
        "run", "a.csv", "--base-url", url, "--yes", "-q", "--json", env=env, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    run_a = json.loads(first.stdout)["run_id"]
    (tmp_path / "b.csv").write_text(
        "device_id,action\n" + "".join(f"{m},restart\n" for m in macs[1:])
    )
    said = f"restart succeeded on 2 of these devices in the last 24 h (run {run_a}"
    plan = bulkops("plan", "b.csv", "--base-url", url, env=env, cwd=tmp_path)
    assert plan.returncode == 0 and f"{said})" in plan.stderr, plan.stderr
    other = tmp_path / "other"
    other.mkdir()
    run = bulkops("run", "../b.csv", "--base-url", url, "--yes", "-q", env=env, cwd=other)
    assert run.returncode == 0, run.stderr
    assert f"{said} (--db {tmp_path / 'bulkops.db'}))" in run.stderr, run.stderr
    (tmp_path / "c.csv").write_text(f"device_id,action\n{macs[0]},blankpush\n")
    quiet = bulkops("plan", "c.csv", "--base-url", url, env=env, cwd=tmp_path)
    assert quiet.returncode == 0 and "in the last 24 h" not in quiet.stderr, quiet.stderr


def test_a_plan_counts_what_other_integrations_left_of_the_hour(tmp_path: Path) -> None:
    """Review: with another integration having spent 9,995 of the tenant's 10,000 this hour
    (the API said `X-RateLimit-Remaining-Hour: 5`), the plan showed 8998 left and an ETA of
    seconds; only the run saw the truth. The plan's one read says it now."""
    from bulkops.sim import Faults

    sim = make_sim(devices=20, hour_limit=10_000, faults=Faults(other_integration_per_window=9_995))
    token = sim.add_token()
    with sim.in_thread() as url:
        write_job(tmp_path, sim, 3, "blankpush")
        plan = bulkops(
            "plan", "job.csv", "--base-url", url, env=env_with_token(token), cwd=tmp_path
        )
    assert plan.returncode == 0, plan.stderr
    found = re.search(r"(\d+) left in this window · ETA (\S+)", plan.stdout)
    assert found is not None, plan.stdout
    assert int(found.group(1)) <= 5, plan.stdout
