"""`python -m bulkops.sim`: the simulator CLI on its own."""

from bulkops.sim.cli import main

main()
