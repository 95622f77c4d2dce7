"""Sending one item: its request, the retries the catalogue allows, and the outcome it ends with.

The engine's workers hand each item to one ``Sender``.  It commits the item's intent once the
budget grants the slot and before the request leaves, puts an item refused before it reached the
server (429, 401) back to ``pending``, retries only what is safe to repeat, settles an
``unknown`` with one read of the device's commands, reads a PATCH back under ``--verify``, and
hands every ``Outcome`` to the engine to record.  Nothing here knows an action by name: the
catalogue says what is safe to repeat and where a secret comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from bulkops._stop import EXIT_ABORTED, Held, Stop
from bulkops.actions import ACTIONS, DEVICE_PATH, Action, Request
from bulkops.client import KandjiClient, Reply
from bulkops.errors import (
    ApiError,
    AuthError,
    BadResponse,
    NotFound,
    PermissionDenied,
    RunAborted,
    ServerError,
    StatusError,
    TransportError,
)
from bulkops.reconcile import read_secret, reconcile
from bulkops.retry import CircuitBreaker, ErrorKind, RetryPolicy, RetryQuota
from bulkops.store import Store, WorkItem
from bulkops.summary import PERMISSION_MISSING

__all__ = ["Outcome", "Sender", "read_back_mismatch"]

log = logging.getLogger("bulkops")

# 400 answers saying the device already has the command pending, or is already so (the API's
# "Command already running", "This device is already locked.", "… is already pending …").
_ALREADY = re.compile(r"\balready (running|pending|locked)\b", re.IGNORECASE)


# Actions whose parameters name what they act on: one pending for alice says nothing of bob.
_TARGETED = frozenset({"deleteuser"})


def _already_so(exc: StatusError, action: Action, request: Request) -> bool:
    """Whether a 400 says the device already does what the row asks: locked, for a lock; the
    same command pending (most often this row's own earlier try, applied before its answer was
    lost), unless the row names a target a pending one may not share (a DeleteUser's user).

    A pending erase or restart is taken as this row's even when its parameters differ: the
    device will be erased or restarted by it, and failing the row would have ``failed.csv``
    queue a second one once the first is done (review: a Mac erased twice)."""
    found = _ALREADY.search(exc.detail) if exc.status == 400 else None
    if found is None:
        return False
    if found.group(1).lower() == "locked":
        return action.name == "lock"
    return action.name not in _TARGETED or not request.body


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an item ended: its state, the HTTP status and error if any, a secret it returned."""

    state: str
    http_status: int | None
    error: str | None
    secret: str | None = None


class Sender:
    """Takes one item at a time from its request to its outcome."""

    def __init__(
        self,
        *,
        store: Store,
        client: KandjiClient,
        run_id: str,
        stop: Stop,
        complete: Callable[[WorkItem, Outcome], None],
        max_attempts: int,
        verify: bool,
        reconcile_skew_s: float,
    ) -> None:
        self._store = store
        self._client = client
        self._run_id = run_id
        self._stop = stop
        self._complete = complete
        self._verify_writes = verify
        self._reconcile_skew_s = reconcile_skew_s
        self._policy = RetryPolicy(max_attempts=max_attempts)
        self._quota = RetryQuota()
        self._breaker = CircuitBreaker()
        self._rng = random.Random()
        self._denied: dict[str, str] = {}

    async def process(self, item: WorkItem) -> None:
        """Send the item (unless it cannot be) and hand its outcome to the engine.

        Raises ``Held`` when the run stopped before the request left (the item stays pending)
        and ``RunAborted`` when the token is refused.
        """
        action = ACTIONS[item.action]
        request = item.request
        if request is None:
            if item.device_id is None:  # resolution decides every serial row before dispatch
                self._complete(
                    item, Outcome("failed", None, "not resolved: serial number lookup missing")
                )
                return
            request = action.request(item.device_id, item.params)
        if request.permission in self._denied:
            self._complete(item, Outcome("failed", 403, self._denied[request.permission]))
            return
        await self._send(item, action, request)

    async def _send(self, item: WorkItem, action: Action, request: Request) -> None:
        attempt = 0
        retry = partial(self._retry, item, action, request)
        while True:
            attempt += 1
            self._breaker.record(retried=attempt > 1)
            landed: str | None = None  # accepted, with a body we could not read
            try:
                task = self._stop.wait_for_permit()
                try:
                    reply = await self._client.request(
                        request.method,
                        request.path,
                        json=request.body,
                        before_send=partial(self._intent, item, task),
                        after_refusal=partial(self._refused, item),
                    )
                except asyncio.CancelledError:
                    if self._stop.withdrew(task):  # stopped while it waited for the budget
                        raise Held from None
                    raise
                finally:
                    self._stop.permit_granted(task)
            except (Held, RunAborted):  # the run stopped before this attempt left
                if attempt > 1:  # retried only when safe to send again: not in flight now
                    self._store.release(self._run_id, item.line)
                raise
            except AuthError as exc:
                self._store.release(self._run_id, item.line)
                raise self._auth_abort(exc) from None
            except PermissionDenied:
                why = f"{PERMISSION_MISSING} {request.permission}; enable it in Access > API tokens"
                self._denied.setdefault(request.permission, why)
                self._complete(item, Outcome("failed", 403, why))
                return
            except NotFound as exc:
                # A repeat: this process's retry, or a resend after a stop (sent_at is kept).
                if request.method == "DELETE" and (attempt > 1 or item.sent_at is not None):
                    self._complete(item, Outcome("succeeded", 404, "already deleted"))
                else:
                    self._complete(item, Outcome("failed", 404, f"device not found ({exc.detail})"))
                return
            except StatusError as exc:
                if isinstance(exc, ServerError):
                    if await retry("5xx", attempt, exc):
                        continue
                    return
                if not _already_so(exc, action, request):
                    self._complete(item, Outcome("failed", exc.status, exc.detail))
                    return
                # Queued already (by an earlier send or someone else), or done: the device does
                # what the row asks. A lock's PIN is read back as after a lost answer.
                reply, landed = Reply(exc.status, None, {}), f"already on the device: {exc.detail}"
                if request.body:  # the queued one may carry other parameters: it is what runs
                    kept = "PIN" if any(p.secret for p in action.params) else "parameters"
                    landed += (
                        f"; not queued again: the one queued runs, with the {kept} it was sent"
                    )
            except TransportError as exc:
                kind: ErrorKind = "reset_after_send" if exc.maybe_applied else "connect"
                if exc.timed_out:
                    kind = "timeout"
                if await retry(kind, attempt, exc):
                    continue
                return
            except BadResponse as exc:
                if not (200 <= exc.status < 300 and exc.json_cut):
                    if 200 <= exc.status < 300:  # may have landed: said if all else fails
                        retry = partial(retry, odd_2xx=f"HTTP {exc.status} with {exc}")
                    if await retry("bad_response", attempt, exc):
                        continue
                    return
                # The API accepted it (its JSON came back cut short): sending again would
                # repeat a change that landed, and a later 5xx would report it failed. An HTML
                # or text 200 may be a proxy's or a sign-in page: that is not taken as landed.
                reply, landed = Reply(exc.status, None, {}), f"HTTP {exc.status}, but {exc}"
            self._quota.success()
            secret = note = None
            if action.secret_key and isinstance(reply.data, dict):
                value = reply.data.get(action.secret_key)
                secret = str(value) if value is not None else None
            if action.secret_path and secret is None and item.device_id:
                secret, note = await read_secret(self._client, action.secret_path, item.device_id)
            if landed is not None:
                note = f"{landed}; {note}" if note else landed
            try:
                mismatch = await self._verify(request) if self._verify_writes else None
            except PermissionDenied:  # written all the same: the token cannot read it back
                note = f"written, not verified: the token lacks GET {DEVICE_PATH}"
                self._complete(item, Outcome("succeeded", reply.status, note, secret=secret))
                self._abort_unverified()
                return
            if mismatch:
                self._complete(item, Outcome("failed", reply.status, mismatch))
            else:
                self._complete(item, Outcome("succeeded", reply.status, note, secret=secret))
            return

    async def _verify(self, request: Request) -> str | None:
        """Read the record back after a PATCH; a one-line mismatch, or ``None``.

        Raises ``PermissionDenied`` when the token may not read devices.
        """
        if request.method != "PATCH" or not request.body or "/integrations/" in request.route:
            return None
        try:
            got = (await self._client.read(request.path)).data
        except PermissionDenied:
            raise
        except ApiError as exc:
            return f"written, but the read-back failed: {exc}"
        if not isinstance(got, dict):
            return "written, but the read-back was not a device record"
        return read_back_mismatch(request.body, got)

    async def _retry(
        self,
        item: WorkItem,
        action: Action,
        request: Request,
        kind: ErrorKind,
        attempt: int,
        exc: ApiError,
        *,
        odd_2xx: str | None = None,
    ) -> bool:
        """Sleep and return True to try again, or record the item's outcome and return False.

        ``odd_2xx`` is the answer of an earlier attempt that was a 2xx we could not read: it may
        have landed, so a PATCH that fails in the end is read back before it is called failed.
        """
        decision = self._policy.decide(
            safe_to_repeat=action.safe_to_repeat,
            error_kind=kind,
            attempt=attempt,
            quota=self._quota,
        )
        if decision.outcome == "unknown":  # not retried, but the API failed all the same
            self._breaker.record_error()
        if decision.retry and not self._breaker.tripped():
            await asyncio.sleep(self._policy.delay_s(attempt, rng=self._rng))
            return True
        if self._breaker.tripped() and self._stop.reason is None:
            self._stop.abort(
                RunAborted(
                    f"the API looks degraded ({self._breaker.reason}); paused: run the same "
                    "command later to resume",
                    exit_code=EXIT_ABORTED,
                )
            )
        if decision.retry:  # the pause cut its retry short: it stays open for the resume
            self._store.release(self._run_id, item.line)
            return False
        if kind == "connect":  # never reached the API: nothing happened, so nothing is final
            self._store.release(self._run_id, item.line)
            if self._stop.reason is None:
                self._stop.abort(
                    RunAborted(
                        f"{exc} on every attempt; the items not sent stay pending. "
                        "Check the network or --base-url, then run the same command to resume",
                        exit_code=EXIT_ABORTED,
                    )
                )
            return False
        state = "unknown" if decision.outcome == "unknown" else "failed"
        detail = f"{exc} ({decision.reason})"
        secret = None
        if state == "unknown" and item.device_id:
            # Settle it now, while it is fresh: a request applied before the connection broke
            # already shows in the device's command list (one read; never a resend).
            verdict = await reconcile(
                self._client,
                action,
                device_id=item.device_id,
                sent_at=item.sent_at or time.time() - 60.0,
                skew_s=self._reconcile_skew_s,
            )
            if verdict.state == "succeeded":
                state, detail, secret = "succeeded", f"{exc}; {verdict.detail}", verdict.secret
            else:  # what the read found (or why it could not tell) is the admin's best lead
                detail = f"{detail}; {verdict.detail.removeprefix('outcome unknown: ')}"
        if state == "failed" and odd_2xx is not None:
            if request.method == "PATCH" and request.body:
                with contextlib.suppress(PermissionDenied):
                    if await self._verify(request) is None:  # the device has what was sent
                        state = "succeeded"
                        detail = f"applied (read back): an attempt was answered {odd_2xx}"
            if state == "failed":
                detail += f"; an earlier attempt was answered {odd_2xx}: it may have landed"
        self._complete(item, Outcome(state, getattr(exc, "status", None), detail, secret=secret))
        return False

    def _abort_unverified(self) -> None:
        """--verify cannot read back: every later write would go unverified. Stop sending."""
        if self._stop.reason is None:
            self._stop.abort(
                RunAborted(
                    f"--verify: the API token lacks the permission GET {DEVICE_PATH} to read "
                    "each update back; enable it in Access > API tokens (or drop "
                    "--verify), then run the same command to resume",
                    exit_code=EXIT_ABORTED,
                )
            )

    async def _intent(self, item: WorkItem, task: asyncio.Task[object]) -> None:
        """Commit the intent to send; once the run is aborted (token refused, breaker), the
        workers still waiting for the budget send nothing: their items stay pending."""
        self._stop.permit_granted(task)
        if self._stop.reason is not None:
            raise self._stop.reason
        if self._stop.is_set():
            raise Held  # Ctrl-C: in-flight requests finish, nothing new leaves
        await self._store.mark_sending(self._run_id, item.line, device_id=item.device_id)

    async def _refused(self, item: WorkItem) -> None:
        """A 429 refused it: pending again, and waiting for the budget like an item not sent."""
        self._store.release(self._run_id, item.line)
        self._stop.wait_for_permit()  # this task, until its next permit

    def _auth_abort(self, exc: AuthError) -> RunAborted:
        return RunAborted(
            f"the API token was refused ({exc.detail}); set a valid token and run the same "
            "command again to resume",
            exit_code=EXIT_ABORTED,
        )


def read_back_mismatch(body: Mapping[str, Any], got: Mapping[str, Any]) -> str | None:
    """The first field of a PATCH ``body`` the record ``got`` back does not match, or ``None``.

    ``user`` is sent as an id and may read back as an object; ``tags`` compare in any order; an
    empty ``asset_tag`` is the same as none.
    """
    for key, want in body.items():
        have = got.get(key)
        if key == "user":
            have = have.get("id") if isinstance(have, dict) else (have or None)
        elif key == "tags":
            have, want = sorted(have or []), sorted(want or [])
        elif key == "asset_tag":
            have, want = have or None, want or None
        if have != want:
            return f"verify: {key} reads back {have!r}, expected {want!r}"
    return None
