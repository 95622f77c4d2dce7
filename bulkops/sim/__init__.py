"""A local Kandji / Iru API simulator: the test world and `bulkops demo`'s default tenant.

It imports nothing from the rest of bulkops: the engine talks to it over HTTP only.
"""

from bulkops.sim.config import SimConfig
from bulkops.sim.faults import Faults
from bulkops.sim.fleet import Fleet, generate_fleet
from bulkops.sim.ledger import Ledger, LedgerEntry
from bulkops.sim.server import Simulator

__all__ = ["Faults", "Fleet", "Ledger", "LedgerEntry", "SimConfig", "Simulator", "generate_fleet"]
