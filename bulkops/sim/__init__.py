"""A local Kandji / Iru API simulator: the test world and `bulkops demo`'s default tenant.

It imports nothing from the rest of bulkops: the engine talks to it over HTTP only.
"""

from typing import TYPE_CHECKING, Any

from bulkops.sim.config import SimConfig
from bulkops.sim.faults import Faults
from bulkops.sim.fleet import Fleet, generate_fleet
from bulkops.sim.ledger import Ledger, LedgerEntry

if TYPE_CHECKING:
    from bulkops.sim.server import Simulator


def __getattr__(name: str) -> Any:
    """``Simulator`` on first use: aiohttp's server is not imported for ``bulkops --help``."""
    if name == "Simulator":
        from bulkops.sim.server import Simulator

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Faults", "Fleet", "Ledger", "LedgerEntry", "SimConfig", "Simulator", "generate_fleet"]
