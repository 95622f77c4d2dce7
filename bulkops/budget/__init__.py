"""The request budget: how fast bulkops may call one tenant's API, shared and persisted.

``Rate``/``BudgetConfig`` say what is allowed, ``SendHistory`` remembers what was sent (SQLite,
shared by every run on the machine), ``Budget`` makes each request wait its turn and handles
429s with one shared gate, and ``Clock``/``FakeClock`` make all of it testable in virtual time.
"""

from bulkops.budget._budget import SERVER_RESERVE, Budget, BudgetStats, Permit
from bulkops.budget._clock import Clock, FakeClock, SystemClock
from bulkops.budget._config import DEFAULT_RATE, BudgetConfig, Rate
from bulkops.budget._history import SendHistory

__all__ = [
    "DEFAULT_RATE",
    "SERVER_RESERVE",
    "Budget",
    "BudgetConfig",
    "BudgetStats",
    "Clock",
    "FakeClock",
    "Permit",
    "Rate",
    "SendHistory",
    "SystemClock",
]
