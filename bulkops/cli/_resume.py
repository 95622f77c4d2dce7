"""``bulkops resume RUN_ID``: a stopped run continued, against the tenant it was made for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bulkops.cli._common import no_such_run, require_db, run_async
from bulkops.cli._render import print_result
from bulkops.cli._run import Approval, check_db_path, drive_with_signals, is_loopback_url

if TYPE_CHECKING:
    from bulkops.job import JobConfig
    from bulkops.store import RunInfo, Store

__all__ = ["resume_command", "tenant_of_run"]


def tenant_of_run(db: Path, run_id: str) -> tuple[str | None, str]:
    """Where ``resume RUN_ID`` alone goes: the run's tenant, as the config file's profile for
    it when there is one (its rate and reserve with it), and as its API root."""
    from bulkops.client import check_base_url
    from bulkops.profiles import profile_for
    from bulkops.store import Store

    check_db_path(db)
    require_db(db, run_id)
    store = Store(db)
    try:
        run = _the_run(store, run_id, db)
    finally:
        store.close()
    scheme = "http" if is_loopback_url(f"http://{run.tenant}") else "https"
    return profile_for(run.tenant), check_base_url(f"{scheme}://{run.tenant}")


def _the_run(store: Store, run_id: str, db: Path) -> RunInfo:
    run = store.run(run_id)
    if run is None:
        raise no_such_run(db, run_id, [r.run_id for r in store.runs()])
    return run


def resume_command(*, run_id: str, config: JobConfig, approval: Approval, as_json: bool) -> int:
    """``bulkops resume RUN_ID``."""
    from bulkops.store import Store

    require_db(config.db_path, run_id)
    store = Store(config.db_path)
    try:
        run = _the_run(store, run_id, config.db_path)
        result = run_async(
            drive_with_signals(
                store,
                run,
                config,
                quiet=approval.quiet or as_json,
                resumed=True,
                approval=replace(approval, quiet=approval.quiet or as_json),
                command="resume",
            )
        )
        print_result(result, as_json=as_json)
        return result.exit_code
    finally:
        store.close()
