"""The crash harness: run the real CLI, kill it, run it again, then hold it to the ledger.

Three parts, each usable alone:

* **Manifests** (``mixed_rows``): a mixed job built from the simulator's fleet — nudges, renames,
  PATCHes by serial number, Mac locks (PINs), restarts, iPhone lost mode, erases with a PIN,
  deletes — one row per (device, action), so any second request for a row is a resend.
* **Launchers**: ``ExecLauncher`` starts ``bulkops`` (the console script) or
  ``python -m tests.crash.runner`` as a new process; ``ForkServer`` keeps one runner process
  with everything imported and forks a child per pass (the same CLI in a real process, without
  a second of imports each time).  ``run_until_done`` kills passes at seeded random moments with
  SIGKILL, checks ``PRAGMA integrity_check`` after every kill, and repeats the same command until
  a pass exits 0 or 1.
* **The checker** (``check``): the simulator's ledger is the ground truth.  It counts items
  never executed (unless reported unknown), unsafe actions applied twice or resent, PINs the
  simulator issued that ``secrets.csv`` lacks, and rows of ``results.csv`` that disagree with
  the ledger.  ``Verdict.violations`` is empty only when every invariant holds.
"""

from __future__ import annotations

import csv
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkops.actions import ACTIONS
from bulkops.sim import Faults, LedgerEntry, SimConfig, Simulator

REPO = Path(__file__).resolve().parents[2]
BULKOPS = Path(sys.executable).with_name("bulkops")
UNSAFE = frozenset(name for name, a in ACTIONS.items() if not a.safe_to_repeat)
# Requests the application never saw: a resend after one of these is not a resend.
NOT_SEEN = frozenset({"rate_limited", "unauthorized", "reset_before", "fault_5xx"})
COLUMNS = ("device_id", "serial_number", "action", "message", "asset_tag", "device_name", "pin")
EXIT_KILLED = -signal.SIGKILL
FINISHED = (0, 1)

# ---- the tenant and the manifest ---------------------------------------------------------------


def make_sim(*, devices: int, seed: int, latency_s: float = 0.02, **kwargs: Any) -> Simulator:
    """A simulator whose commands complete at once (so a repeat is applied, and visible)."""
    config: dict[str, Any] = {
        "devices": devices,
        "seed": seed,
        "hour_limit": 1_000_000,
        "second_limit": 100_000,
        "command_delay_s": 0.0,
        "faults": Faults(latency_s=latency_s, latency_jitter_s=latency_s),
    }
    config.update(kwargs)
    return Simulator(SimConfig(**config))


@dataclass(frozen=True, slots=True)
class Row:
    """One manifest row and the device it lands on (known even when given by serial number)."""

    line: int
    device_id: str
    action: str
    cells: dict[str, str]

    @property
    def method(self) -> str:
        return ACTIONS[self.action].method

    @property
    def path(self) -> str:
        return ACTIONS[self.action].route.format(device_id=self.device_id)


def _fleet(sim: Simulator) -> list[dict[str, Any]]:
    return sorted(sim.fleet.devices.values(), key=lambda d: d["device_id"])


def mixed_rows(sim: Simulator, *, items: int, seed: int) -> list[Row]:
    """About ``items`` rows over the fleet, every action class represented (seeded).

    Each device gets a nudge, and by chance a rename, an asset tag (by serial number), a restart,
    a Mac lock (a PIN), lost mode on an iPhone; a few devices get only an erase with a PIN (Macs)
    or only a delete, as those must be a device's only action.
    """
    rng = random.Random(seed)
    cells: list[tuple[dict[str, Any], str, dict[str, str]]] = []
    for i, dev in enumerate(_fleet(sim)):
        if len(cells) >= items:
            break
        did, platform = dev["device_id"], dev["platform"]
        roll = rng.random()
        if roll < 0.03 and platform == "Mac":
            cells.append((dev, "erase", {"pin": f"{rng.randrange(10**6):06d}"}))
            continue
        if roll < 0.06:
            cells.append((dev, "delete", {}))
            continue
        cells.append((dev, "blankpush" if i % 2 else "updateinventory", {}))
        if rng.random() < 0.3:
            cells.append((dev, "setname", {"device_name": f"crash {seed}-{i}"}))
        if rng.random() < 0.3:
            cells.append((dev, "update", {"asset_tag": f"AT-{seed}-{i}", "by_serial": "1"}))
        if rng.random() < 0.25:
            cells.append((dev, "restart", {}))
        if platform == "Mac" and rng.random() < 0.3:
            cells.append((dev, "lock", {"message": "Call IT"}))
        if platform == "iPhone" and dev["lost_mode_status"] != "ENABLED" and rng.random() < 0.5:
            cells.append((dev, "enablelostmode", {"message": "Lost: call IT"}))
        del did
    rows = []
    for n, (dev, action, extra) in enumerate(cells[:items]):
        given = {"action": action, **extra}
        if given.pop("by_serial", None):
            given["serial_number"] = dev["serial_number"]
        else:
            given["device_id"] = dev["device_id"]
        rows.append(Row(n + 2, dev["device_id"], action, given))
    return rows


def single_row(device: dict[str, Any], action: str, **cells: str) -> list[Row]:
    """A one-row manifest."""
    given = {"device_id": device["device_id"], "action": action, **cells}
    return [Row(2, device["device_id"], action, given)]


def write_manifest(path: Path, rows: Sequence[Row]) -> Path:
    """The rows as a CSV manifest (line numbers match ``Row.line``)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.cells.get(c, "") for c in COLUMNS})
    return path


def devices_of(sim: Simulator, *platforms: str) -> list[dict[str, Any]]:
    """Fleet records of these platforms in ``device_id`` order (all when none are given)."""
    return [d for d in _fleet(sim) if not platforms or d["platform"] in platforms]


# ---- a job folder ------------------------------------------------------------------------------


@dataclass
class Job:
    """One job's files and the command that runs (and resumes) it."""

    folder: Path
    url: str
    token: str
    rows: list[Row]
    concurrency: int = 8
    per_second: int = 50
    extra: tuple[str, ...] = ()

    @property
    def manifest(self) -> Path:
        return self.folder / "job.csv"

    @property
    def db(self) -> Path:
        return self.folder / "db" / "run.db"

    @property
    def reports(self) -> Path:
        return self.folder / "reports"

    @property
    def out(self) -> Path:
        return self.folder / "stdout.txt"

    @property
    def err(self) -> Path:
        return self.folder / "stderr.txt"

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_manifest(self.manifest, self.rows)

    def common(self) -> list[str]:
        return [
            "--base-url",
            self.url,
            "--db",
            str(self.db),
            "--budget-db",
            str(self.folder / "budget.db"),
            "--out",
            str(self.reports),
            "--rate",
            "1000000/h",
            "--per-second",
            str(self.per_second),
            "--concurrency",
            str(self.concurrency),
            "--yes",
            "-q",
        ]

    def run_argv(self) -> list[str]:
        """``bulkops run MANIFEST …``: the same command starts and resumes the job."""
        return [
            "run",
            str(self.manifest),
            *self.common(),
            "--max-destructive",
            "1000000",
            *self.extra,
        ]

    def resume_argv(self, run_id: str, *more: str) -> list[str]:
        return ["resume", run_id, *self.common(), "--max-destructive", "1000000", *more]

    def env(self) -> dict[str, str]:
        """The token in the environment, never on the command line."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IRU_", "KANDJI_"))}
        env["IRU_API_TOKEN"] = self.token
        env["BULKOPS_STATE_DIR"] = str(self.folder / "state")
        env["PYTHONPATH"] = str(REPO)
        env["COLUMNS"] = "200"
        return env

    def fresh_output(self) -> None:
        """Forget what earlier passes printed."""
        self.out.write_text("")
        self.err.write_text("")

    def run_id(self) -> str:
        with closing_db(self.db) as db:
            (run_id,) = db.execute("SELECT run_id FROM runs").fetchone()
        return str(run_id)

    def states(self) -> dict[int, str]:
        """Each item's state in the database, by line."""
        with closing_db(self.db) as db:
            return dict(db.execute("SELECT line, state FROM items").fetchall())


@contextmanager
def closing_db(path: Path, *, readonly: bool = True) -> Iterator[sqlite3.Connection]:
    """A connection that leaves a crashed database as it found it (read-only, no checkpoint)."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of the database (``ok``, or what SQLite found)."""
    if not path.exists():
        return "ok"  # killed before the file was created
    with closing_db(path) as db:
        return "; ".join(r[0] for r in db.execute("PRAGMA integrity_check").fetchall())


# ---- launchers ---------------------------------------------------------------------------------


class ExecChild:
    """A child started with ``subprocess``."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: int) -> None:
        if self.proc.returncode is None:
            os.kill(self.pid, sig)


class ExecLauncher:
    """New processes: ``bulkops`` itself, or the runner when something is patched in."""

    def spawn(self, job: Job, argv: list[str], *, spec: dict[str, Any] | None = None) -> ExecChild:
        spec = dict(spec or {})
        limit = spec.pop("rlimit_fsize", None)
        if spec:
            cmd = [sys.executable, "-m", "tests.crash.runner", "--spec", json.dumps(spec), "--"]
        else:
            cmd = [str(BULKOPS)]

        def preexec() -> None:
            if limit is not None:
                import resource

                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: EFBIG, not a signal
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        with job.out.open("ab") as out, job.err.open("ab") as err:
            proc = subprocess.Popen(
                [*cmd, *argv],
                cwd=job.folder,
                env=job.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=preexec,  # only setrlimit: no lock is taken between fork and exec
            )
        return ExecChild(proc)


class ForkChild:
    """A child of the fork server; its exit code comes back over the server's pipe."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            msg = self.server.read(timeout)
            if msg is not None:
                assert msg["pid"] == self.pid, msg
                self.returncode = int(msg["returncode"])
        return self.returncode

    def signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)


class ForkServer:
    """``python -m tests.crash.runner --serve``: one child at a time, forked, not exec'd."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash.runner", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._fd = self.proc.stdout.fileno()
        self._buf = b""

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message, or ``None`` when ``timeout`` passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                raise RuntimeError("the fork server died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return dict(json.loads(line))

    def spawn(self, job: Job, argv: list[str], *, spec: dict[str, Any] | None = None) -> ForkChild:
        cmd = {
            "argv": argv,
            "env": job.env(),
            "cwd": str(job.folder),
            "stdout": str(job.out),
            "stderr": str(job.err),
            "spec": spec or {},
        }
        self._in.write(json.dumps(cmd).encode() + b"\n")
        self._in.flush()
        msg = self.read(60)
        assert msg is not None and "pid" in msg, msg
        return ForkChild(self, int(msg["pid"]))

    def close(self) -> None:
        self._in.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Launcher = ExecLauncher | ForkServer


def run_once(
    launcher: Launcher,
    job: Job,
    argv: list[str] | None = None,
    *,
    spec: dict[str, Any] | None = None,
    timeout_s: float = 120.0,
) -> int:
    """Run one pass to its end; returns the exit code."""
    child = launcher.spawn(job, argv or job.run_argv(), spec=spec)
    rc = child.wait(timeout_s)
    if rc is None:
        hung(child)
        raise AssertionError(f"pass did not end within {timeout_s} s; stderr: {tail(job.err, 80)}")
    return rc


def hung(child: ExecChild | ForkChild) -> None:
    """Dump a hung child's stacks into its stderr (runner children only), then kill it."""
    child.signal(signal.SIGUSR1)
    time.sleep(0.5)
    child.signal(signal.SIGKILL)
    child.wait(30)


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---- kill -9 at random moments -------------------------------------------------------------------


@dataclass
class KillRun:
    """How a job went under ``kill -9``."""

    kills: int = 0
    passes: int = 0
    exit_code: int | None = None
    integrity_errors: list[str] = field(default_factory=list)
    kill_after_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0


def run_until_done(
    launcher: Launcher,
    job: Job,
    sim: Simulator,
    *,
    kills: int,
    seed: int,
    max_delay_s: float,
    early: float = 0.15,
    spec: dict[str, Any] | None = None,
    pass_timeout_s: float = 180.0,
) -> KillRun:
    """Kill passes of the job at random moments (up to ``kills`` times), then let one finish.

    A kill lands ``uniform(0, max_delay_s)`` after the pass made its first request, or (with
    probability ``early``) after its start, to hit ingest, planning and recovery too.
    """
    rng = random.Random(seed)
    out = KillRun()
    t0 = time.monotonic()
    while True:
        out.passes += 1
        before = len(sim.ledger)
        started = time.monotonic()
        child = launcher.spawn(job, job.run_argv(), spec=spec)
        rc: int | None = None
        if out.kills < kills:
            if rng.random() >= early:  # wait for a sign of life: the first request
                while len(sim.ledger) == before and rc is None:
                    rc = child.wait(0.002)
                    if time.monotonic() - started > pass_timeout_s:
                        break
            if rc is None:
                rc = child.wait(rng.uniform(0.0, max_delay_s))
            if rc is None:
                child.signal(signal.SIGKILL)
                rc = child.wait(30)
                out.kills += 1
                out.kill_after_s.append(time.monotonic() - started)
                found = integrity(job.db)
                if found != "ok":
                    out.integrity_errors.append(f"after kill {out.kills}: {found}")
        if rc is None:
            rc = child.wait(pass_timeout_s)
        if rc is None:
            child.signal(signal.SIGKILL)
            child.wait(30)
            raise AssertionError(f"a pass hung for {pass_timeout_s} s: {tail(job.err)}")
        if rc in FINISHED:
            out.exit_code = rc
            break
        if rc != EXIT_KILLED:
            raise AssertionError(f"pass {out.passes} exited {rc}: {tail(job.err)}")
    out.elapsed_s = time.monotonic() - t0
    return out


# ---- the checker -------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Verdict:
    """The invariants, as counts; ``violations`` lists every breach with its row."""

    items: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    resent_unsafe: list[str] = field(default_factory=list)
    pins_issued: int = 0
    pins_kept: int = 0
    pins_missing: list[str] = field(default_factory=list)
    wrong_secrets: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reconciled: int = 0
    requests: int = 0

    @property
    def unknown(self) -> int:
        return self.outcomes["unknown"]

    @property
    def violations(self) -> list[str]:
        return [
            *(f"lost: {x}" for x in self.lost),
            *(f"duplicate: {x}" for x in self.duplicates),
            *(f"unsafe resend: {x}" for x in self.resent_unsafe),
            *(f"PIN not kept: {x}" for x in self.pins_missing),
            *(f"wrong secret: {x}" for x in self.wrong_secrets),
            *(f"results disagree: {x}" for x in self.disagreements),
            *(f"unexpected request: {x}" for x in self.unexpected),
        ]

    def figures(self) -> str:
        return (
            f"items {self.items} · outcomes {dict(sorted(self.outcomes.items()))} · "
            f"lost {len(self.lost)} · duplicates {len(self.duplicates)} · "
            f"unsafe resends {len(self.resent_unsafe)} · PINs kept {self.pins_kept}/"
            f"{self.pins_issued} · unknown {self.unknown} · reconciled {self.reconciled} · "
            f"disagreements {len(self.disagreements)} · requests {self.requests}"
        )


def check(
    rows: Sequence[Row],
    entries: Sequence[LedgerEntry],
    reports: Path,
    *,
    resends_allowed: frozenset[int] = frozenset(),
) -> Verdict:
    """Hold the reports of a finished job to the simulator's ledger.

    ``resends_allowed``: lines the user chose to send again (``--resend-unknown``), so a second
    request for them is not a violation (a second *application* still is counted as duplicate
    unless the first was never applied).
    """
    v = Verdict(items=len(rows))
    by_key: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
    for e in entries:
        if e.method != "GET":
            by_key[(e.method, e.path)].append(e)
    results = {int(r["line"]): r for r in read_csv(reports / "results.csv")}
    secrets = {int(s["line"]): s for s in read_csv(reports / "secrets.csv")}
    known = set()
    for row in rows:
        key = (row.method, row.path)
        known.add(key)
        reqs = by_key.get(key, [])
        seen = [e for e in reqs if e.outcome not in NOT_SEEN]
        applied = [e for e in reqs if e.applied]
        v.requests += len(reqs)
        res = results.get(row.line)
        outcome = res["outcome"] if res else "missing"
        v.outcomes[outcome] += 1
        what = (
            f"line {row.line} {row.action} {row.device_id[:8]} ({outcome}, {len(applied)} applied)"
        )
        if res is not None and "reconciled" in res.get("error", ""):
            v.reconciled += 1
        if res is not None and res["device_id"] not in ("", row.device_id):
            v.disagreements.append(f"{what}: results name device {res['device_id']}")
        if outcome != "unknown":
            if not applied:
                v.lost.append(what)
            elif outcome != "succeeded":
                v.disagreements.append(f"{what}: the ledger shows it applied")
        if row.action in UNSAFE:
            if len(applied) > 1:
                v.duplicates.append(what)
            if len(seen) > 1 and row.line not in resends_allowed:
                v.resent_unsafe.append(f"{what}: {len(seen)} requests reached the server")
        pins = [e.pin for e in applied if e.pin]
        v.pins_issued += len(pins)
        secret = secrets.get(row.line, {}).get("secret")
        for pin in pins:
            if secret == pin:
                v.pins_kept += 1
            elif outcome != "unknown":
                v.pins_missing.append(f"{what}: PIN {pin} not in secrets.csv")
        if secret is not None and secret not in pins:
            v.wrong_secrets.append(f"{what}: secrets.csv has a PIN the server never issued")
    if len(results) != len(rows):
        v.disagreements.append(f"results.csv has {len(results)} rows for {len(rows)} items")
    for key, reqs in by_key.items():
        if key not in known and any(e.outcome not in NOT_SEEN for e in reqs):
            v.unexpected.append(f"{key[0]} {key[1]} ×{len(reqs)}")
    return v


def entries_for(sim: Simulator, rows: Sequence[Row]) -> list[LedgerEntry]:
    """The ledger entries that concern these rows' devices (lookups included)."""
    ids = {r.device_id for r in rows}
    out = []
    for e in list(sim.ledger.entries):
        parts = e.path.split("/")
        if len(parts) > 4 and parts[4] in ids:
            out.append(e)
    return out


# ---- the crash-point sweep -----------------------------------------------------------------------


@dataclass
class Point:
    """One crash point of a sweep and what the resume made of it."""

    k: int
    label: str
    crashed: int
    resumed: int
    integrity: str
    verdict: Verdict


def sweep(
    launcher: Launcher,
    new_job: Callable[[int], Job],
    sim: Simulator,
    *,
    spec: dict[str, Any] | None = None,
    after_only: bool = True,
    limit: int = 80,
) -> list[Point]:
    """For k = 1, 2, …: end a fresh job at its k-th point, resume it, check it; until a pass
    with no point k finishes on its own.  ``new_job(k)`` gives each k its own job and device."""
    points = []
    for k in range(1, limit + 1):
        job = new_job(k)
        events = job.folder / "events.txt"
        crash = {**(spec or {}), "crash_at": k, "after_only": after_only, "events": str(events)}
        rc = run_once(launcher, job, spec=crash)
        if rc in FINISHED:
            return points
        assert rc == 137, f"k={k}: exit {rc}: {tail(job.err)}"
        label = events.read_text().splitlines()[-1].split("\t", 1)[1]
        found = integrity(job.db)
        resumed = run_once(launcher, job, spec=spec)
        verdict = check(job.rows, entries_for(sim, job.rows), job.reports)
        points.append(Point(k, label, rc, resumed, found, verdict))
    raise AssertionError(f"the sweep did not finish within {limit} points")


def sweep_table(title: str, points: Sequence[Point]) -> str:
    """The sweep as a small table for the log and the README."""
    lines = [f"{title}: {len(points)} crash points"]
    for p in points:
        v = p.verdict
        outcome = ",".join(sorted(v.outcomes))
        bad = "; ".join(v.violations) or "ok"
        lines.append(f"  k={p.k:<3} {p.label:<48} → resume {p.resumed} {outcome:<10} {bad}")
    return "\n".join(lines)


# ---- storage faults ----------------------------------------------------------------------------

_HOLD = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def locked(db: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holds ``BEGIN EXCLUSIVE`` on the database until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == b"locked\n"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()


def sent_without_intent(job: Job, entries: Sequence[LedgerEntry]) -> list[str]:
    """Rows with a request in ``entries`` whose item the database still has as ``pending``.

    A request may leave only after its ``sending`` row is committed: an item the store could not
    mark must not show up at the server.
    """
    states = job.states()
    keys = {(e.method, e.path) for e in entries if e.method != "GET"}
    return [
        f"line {r.line} {r.action}: requested, but {states.get(r.line)} in the database"
        for r in job.rows
        if (r.method, r.path) in keys and states.get(r.line) == "pending"
    ]


def error_lines(job: Job) -> list[str]:
    """The ``error:`` lines the CLI printed."""
    return [ln for ln in job.err.read_text().splitlines() if ln.startswith("error:")]


def settled(sim: Simulator, *, quiet_s: float = 0.5, timeout_s: float = 30.0) -> int:
    """The ledger's length once no entry has arrived for ``quiet_s`` (a killed client's last
    requests are recorded when the server has answered them)."""
    deadline = time.monotonic() + timeout_s
    n = len(sim.ledger)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if len(sim.ledger) != n:
            n, since = len(sim.ledger), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return n
