"""``python -m bulkops``."""

from bulkops.cli import main

main()
