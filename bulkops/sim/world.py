"""Runtime state beside the fleet: MDM command queues, locks, PINs, activity, id order."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bulkops.sim.clock import VirtualClock
from bulkops.sim.fleet import Fleet, Record

__all__ = ["Command", "DeviceState", "World"]

PENDING, COMPLETED = 1, 3
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


@dataclass(slots=True)
class Command:
    """One queued MDM command; it completes `delay` virtual seconds after it was requested."""

    uuid: str
    command_type: str
    request_type: str
    requested_v: float
    completes_v: float
    metadata: dict[str, Any]

    def pending(self, now_v: float) -> bool:
        """Still waiting for the device (status 1)."""
        return now_v < self.completes_v


@dataclass(slots=True)
class DeviceState:
    """Mutable per-device facts that are not fields of the device record."""

    locked: bool = False
    unlock_pin: str | None = None
    commands: list[Command] = field(default_factory=list)
    busy_until: dict[str, float] = field(default_factory=dict)  # request_type -> completes_v
    activity: list[Record] | None = None


class World:
    """Owns everything that changes while the simulator serves (the fleet records included)."""

    def __init__(
        self, fleet: Fleet, *, clock: VirtualClock, seed: int, command_delay_s: float
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.command_delay_s = command_delay_s
        self.rng = random.Random(seed * 7919 + 17)
        self.states: dict[str, DeviceState] = {}
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._tiebreak = itertools.count()
        self._activity_ids = itertools.count(6000)
        self._sorted_ids: list[str] | None = None

    # -- identity ---------------------------------------------------------------------------

    def new_uuid(self) -> str:
        """A UUID4 drawn from the world's seeded RNG (same request order → same ids)."""
        n = self.rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET  # version 4, RFC 4122 variant
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def new_pin(self) -> str:
        """A six-digit unlock PIN from the seeded RNG."""
        return f"{self.rng.randrange(1_000_000):06d}"

    def state(self, device_id: str) -> DeviceState:
        """The device's runtime state (created on first use)."""
        st = self.states.get(device_id)
        if st is None:
            st = self.states[device_id] = DeviceState()
        return st

    def sorted_ids(self) -> list[str]:
        """Device ids in the default `ordering=device_id` order (cached)."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self.fleet.devices)
        return self._sorted_ids

    def delete_device(self, device_id: str) -> None:
        """Remove a device record (DELETE /devices/{id})."""
        del self.fleet.devices[device_id]
        self.states.pop(device_id, None)
        self._sorted_ids = None

    # -- commands ---------------------------------------------------------------------------

    def settle(self, now_v: float) -> None:
        """Run the completion effects of every command due by `now_v`."""
        due = self._due
        while due and due[0][0] <= now_v:
            _, _, effect = heapq.heappop(due)
            effect()

    def pending_command(self, device_id: str, request_type: str, now_v: float) -> bool:
        """Whether a command of `request_type` is still pending on the device."""
        st = self.states.get(device_id)
        if st is None:
            return False
        return now_v < st.busy_until.get(request_type, -1.0)

    def queue_command(
        self,
        device_id: str,
        *,
        request_type: str,
        command_type: str,
        now_v: float,
        metadata: dict[str, Any] | None = None,
        on_complete: Callable[[], None] | None = None,
    ) -> Command:
        """Queue a command; `on_complete` runs once the virtual delay has passed."""
        cmd = Command(
            uuid=self.new_uuid(),
            command_type=command_type,
            request_type=request_type,
            requested_v=now_v,
            completes_v=now_v + self.command_delay_s,
            metadata=metadata or {},
        )
        st = self.state(device_id)
        st.commands.append(cmd)
        st.busy_until[request_type] = max(st.busy_until.get(request_type, -1.0), cmd.completes_v)
        if on_complete is not None:
            heapq.heappush(self._due, (cmd.completes_v, next(self._tiebreak), on_complete))
        return cmd

    def command_json(self, cmd: Command, now_v: float) -> Record:
        """The command as `/devices/{id}/commands` shows it."""
        done = not cmd.pending(now_v)
        requested = self.clock.iso(cmd.requested_v)
        return {
            "uuid": cmd.uuid,
            "error_chain": [],
            "command_type": cmd.command_type,
            "request_type": cmd.request_type,
            "metadata": cmd.metadata,
            "request_requires_network_tether": False,
            "status": COMPLETED if done else PENDING,
            "attempts": 1 if done else 0,
            "date_requested": requested,
            "date_completed": self.clock.iso(cmd.completes_v) if done else None,
            "last_pushed": requested,
            "user": None,
            "priority": 0,
        }

    # -- activity ---------------------------------------------------------------------------

    def activity(self, device_id: str) -> list[Record]:
        """The device's activity log (an enrollment entry, then recorded changes)."""
        st = self.state(device_id)
        if st.activity is None:
            dev = self.fleet.devices[device_id]
            created = dev["first_enrollment"].replace(" ", "T").replace("+00:00", "Z")
            st.activity = [
                self._activity_entry(
                    dev,
                    created,
                    "enrollment",
                    {"blueprint_name": dev["blueprint_name"], "enrollment_type": "DEP"},
                )
            ]
        return st.activity

    def record_activity(
        self, device_id: str, action_type: str, details: dict[str, Any], now_v: float
    ) -> None:
        """Append an activity entry for a change made through the API."""
        log = self.activity(device_id)
        dev = self.fleet.devices[device_id]
        log.append(self._activity_entry(dev, self.clock.iso(now_v), action_type, details))

    def _activity_entry(
        self, dev: Record, created: str, action_type: str, details: dict[str, Any]
    ) -> Record:
        bp = self.fleet.blueprints.get(dev["blueprint_id"])
        return {
            "id": next(self._activity_ids),
            "created_at": created,
            "action_type": action_type,
            "details": details,
            "computer": {"id": dev["device_id"], "name": dev["device_name"], "is_removed": False},
            "blueprint": {"id": bp["id"], "name": bp["name"], "is_removed": False} if bp else None,
            "user": None,
        }
