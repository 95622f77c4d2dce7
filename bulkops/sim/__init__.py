"""A local Kandji / Iru API simulator: the test world and `bulkops demo`'s default tenant.

It imports nothing from the rest of bulkops: the engine talks to it over HTTP only.  Its parts load
on first use, so `bulkops run` (which registers the `sim` command) does not pay for the fleet
generator, the fault model or aiohttp's server.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkops.sim.config import SimConfig
    from bulkops.sim.faults import Faults
    from bulkops.sim.fleet import Fleet, generate_fleet
    from bulkops.sim.ledger import Ledger, LedgerEntry
    from bulkops.sim.server import Simulator

_HOME = {
    "Faults": "bulkops.sim.faults",
    "Fleet": "bulkops.sim.fleet",
    "Ledger": "bulkops.sim.ledger",
    "LedgerEntry": "bulkops.sim.ledger",
    "SimConfig": "bulkops.sim.config",
    "Simulator": "bulkops.sim.server",
    "generate_fleet": "bulkops.sim.fleet",
}


def __getattr__(name: str) -> Any:
    """``bulkops.sim.X`` from the module that defines it, imported on first use."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)


__all__ = ["Faults", "Fleet", "Ledger", "LedgerEntry", "SimConfig", "Simulator", "generate_fleet"]
