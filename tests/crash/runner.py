"""Run the real ``bulkops`` CLI with crash points or a broken variant patched in from outside.

Nothing here is a knob in production code: this module wraps a few library functions before it
calls ``bulkops.cli.main()``, exactly as the console script does.

* **Crash points.**  Every call of a wrapped function is two points, ``before`` and ``after``
  (a checkpoint commit, an HTTP request, a run-status write, the reports…).  With
  ``crash_at=k`` the process ends with ``os._exit(137)`` at the k-th point (with ``after_only``,
  just after the k-th event; with ``crash_on``, at the first point whose label starts so), the
  way ``kill -9`` would: no ``finally``, no flush.  ``events`` names the file where each point
  is logged (one line, appended and unbuffered) so a test knows how many points a clean run has
  and what each one was.
* **Broken variants** (the controls): ``no-intent`` sends without committing the ``sending``
  row first; ``done-before-send`` also commits the item as succeeded as soon as a worker takes
  it, before the request waits for the budget and leaves.  The crash tests must catch both.
* **Fork server** (``--serve``): imports everything once, then forks one child per command read
  from stdin (JSON lines).  A child is a real process running the real CLI; it costs a few
  milliseconds instead of a second of imports, so a test can afford dozens of ``kill -9``.

Usage::

    python -m tests.crash.runner --spec '{"crash_at": 5}' -- run job.csv --db run.db ...
    python -m tests.crash.runner --serve
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import json
import os
import resource
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import bulkops.cli
import bulkops.job
from bulkops.client import KandjiClient
from bulkops.engine import Engine
from bulkops.store import Store

VARIANTS = ("done-before-send", "no-intent")
EXIT_CRASHED = 137


@dataclass(frozen=True, slots=True)
class Spec:
    """What to patch into one run."""

    crash_at: int | None = None
    after_only: bool = False
    crash_on: str | None = None  # or: at the first point whose label starts with this
    events: str | None = None
    variant: str | None = None
    rlimit_fsize: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> Spec:
        return cls(**json.loads(text)) if text else cls()


class _Points:
    """Counts crash points and ends the process at the chosen one."""

    def __init__(self, spec: Spec) -> None:
        self.n = 0  # every point
        self.after = 0  # points just after an event
        self.crash_at = spec.crash_at
        self.after_only = spec.after_only
        self.crash_on = spec.crash_on
        self.fd = (
            os.open(spec.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if spec.events else -1
        )

    def hit(self, label: str) -> None:
        self.n += 1
        if label.startswith("after "):
            self.after += 1
        k = self.after if self.after_only else self.n
        if self.fd >= 0:
            os.write(self.fd, f"{k}\t{label}\n".encode())
        if k == self.crash_at and (label.startswith("after ") or not self.after_only):
            os._exit(EXIT_CRASHED)
        if self.crash_on and label.startswith(self.crash_on):
            os._exit(EXIT_CRASHED)


def _commit_label(writes: list[tuple[str, tuple[Any, ...]]]) -> str:
    kinds = []
    for sql, _ in writes:
        if "state = 'sending'" in sql:
            kinds.append("intent")
        elif "state = 'pending'" in sql:
            kinds.append("release")
        elif "req_route" in sql:
            kinds.append("plan")
        else:
            kinds.append("outcome")
    return "commit " + "+".join(sorted(set(kinds)))


def _http_label(method: str, path: str) -> str:
    parts = path.split("/")
    if len(parts) > 4 and parts[3] == "devices":
        parts[4] = "{id}"
    return f"http {method} {'/'.join(parts)}"


def _install_points(points: _Points) -> None:
    apply = Store._apply

    def _apply(self: Store, writes: list[tuple[str, tuple[Any, ...]]]) -> None:
        label = _commit_label(writes)
        points.hit(f"before {label}")
        apply(self, writes)
        points.hit(f"after {label}")

    send = KandjiClient._send

    async def _send(self: KandjiClient, method: str, path: str, **kw: Any) -> Any:
        label = _http_label(method, path)
        points.hit(f"before {label}")
        reply = await send(self, method, path, **kw)
        points.hit(f"after {label}")
        return reply

    Store._apply = _apply  # type: ignore[method-assign]
    KandjiClient._send = _send  # type: ignore[method-assign]

    def sync(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            detail = kwargs.get("status", "")
            points.hit(f"before {label} {detail}".rstrip())
            result = original(*args, **kwargs)
            points.hit(f"after {label} {detail}".rstrip())
            return result

        setattr(owner, name, wrapper)

    sync(Store, "create_run", "ingest")
    sync(Store, "set_run", "run-status")
    sync(Store, "forget_secrets", "forget-secrets")
    sync(bulkops.job, "write_reports", "reports")


def _install_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; one of {VARIANTS}")

    async def no_intent(self: Store, run_id: str, line: int, *, device_id: str | None) -> None:
        return None  # the request leaves with no ``sending`` row on disk

    Store.mark_sending = no_intent  # type: ignore[method-assign]
    if variant == "done-before-send":
        process = Engine._process

        async def done_first(self: Engine, item: Any) -> None:
            # The wrong order: the outcome is durable as soon as a worker takes the item, before
            # the request has waited for its turn, let alone left.  A crash in between loses it.
            store, run_id = self._store, self._run.run_id
            store.complete(run_id, item.line, state="succeeded", device_id=item.device_id)
            await store.flush()
            await process(self, item)

        Engine._process = done_first  # type: ignore[method-assign]


def install(spec: Spec) -> None:
    """Patch this process as the spec says (before ``bulkops.cli.main()`` runs)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a hung pass can show its stacks
    if spec.rlimit_fsize is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (spec.rlimit_fsize, spec.rlimit_fsize))
    if spec.crash_at is not None or spec.crash_on or spec.events:
        _install_points(_Points(spec))
    if spec.variant:
        _install_variant(spec.variant)


def run_cli(argv: list[str], spec: Spec) -> int:
    """Run ``bulkops ARGV`` in this process with the spec installed; returns the exit code."""
    install(spec)
    sys.argv = ["bulkops", *argv]
    try:
        bulkops.cli.main()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


# ---- fork server -----------------------------------------------------------------------------


def _child(cmd: dict[str, Any], reply_fd: int) -> None:
    """In the forked child: become the command, run it, never return."""
    code = 70
    try:
        os.close(reply_fd)
        os.setpgid(0, 0)  # its own group, like a shell job: a test can signal it alone
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(cmd["cwd"])
        os.environ.clear()
        os.environ.update(cmd["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, key in ((1, "stdout"), (2, "stderr")):
            out = os.open(cmd[key], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(out, fd)
            os.close(out)
        code = run_cli(list(cmd["argv"]), Spec(**cmd.get("spec", {})))
    except BaseException as exc:  # report, then exit: a child must never return to the server
        print(f"runner child failed: {exc!r}", file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the process ends next line either way
                stream.flush()
        os._exit(code)


def _warm_up() -> None:
    """Parse a command once here, so the children inherit what typer and friends import lazily."""
    saved = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    try:
        import rich.progress  # noqa: F401
        import uvloop  # noqa: F401

        os.environ.pop("IRU_API_TOKEN", None)
        run_cli(["run", "/nonexistent/job.csv", "--base-url", "http://127.0.0.1:9"], Spec())
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def serve() -> None:
    """Fork one child per JSON command on stdin; report its pid, then its exit code."""
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not break the protocol
    _warm_up()
    for raw in sys.stdin:
        if not raw.strip():
            continue
        cmd = json.loads(raw)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(cmd, reply.fileno())
        reply.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        reply.write(
            json.dumps({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)}) + "\n"
        )


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--serve"]:
        serve()
        return
    spec = None
    if args[:1] == ["--spec"]:
        spec, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(run_cli(args, Spec.from_json(spec)))


if __name__ == "__main__":
    main()
