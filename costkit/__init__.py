"""costkit: what an Alibaba Cloud IMM image-splicing workload costs, and whether the bill is right.

The flow is sources (IMM, OSS, bills) -> store -> usage -> pricing -> reports and exports.
The CLI (`costkit.cli`) is a thin layer over the functions re-exported here.
"""
__version__ = "0.1.0"


def load_tasks(store_path="costkit.duckdb", **filters):
    """Stored ImageSplicing tasks as a pandas DataFrame (one row per task, timezone-aware UTC times).

    `store_path` is the history store (`costkit --store`); `filters` are those of
    `costkit.store.Store.tasks_frame`: project, region, status ("Running", "Succeeded", "Failed"), and
    since/until (aware datetimes; start_time in [since, until)). Raises costkit.errors.BadInput when there
    is no store at `store_path`.
    """
    from .store import Store

    with Store.open(store_path, create=False) as store:
        return store.tasks_frame(**filters)
