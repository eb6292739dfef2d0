"""costkit: what an Alibaba Cloud IMM image-splicing workload costs, and whether the bill is right.

The flow is sources (IMM, OSS, bills) -> store -> model -> prices -> engine -> audit -> outputs -> cli;
ARCHITECTURE.md names the layers. The CLI (`costkit.cli`) is a thin layer over the functions re-exported
here. They load lazily, so that `import costkit` stays cheap for the CLI's start-up.
"""
from costkit.core.version import __version__  # noqa: E402,F401

# Public name -> the module that defines it.
_PUBLIC = {
    "estimate": "costkit.engine.forecast",
    "months_frame": "costkit.engine.forecast",
    "cost_frames": "costkit.engine.history",
    "price_history": "costkit.engine.history",
    "parse_period": "costkit.engine.period",
    "mapped_bill": "costkit.store.bills",
    "build_audit": "costkit.audit.reconcile",
    "load_settings": "costkit.model.settings",
    "Store": "costkit.store.db",
}

__all__ = ["load_tasks", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'costkit' has no attribute {name!r}")


def load_tasks(store_path="costkit.duckdb", **filters):
    """Stored ImageSplicing tasks as a pandas DataFrame (one row per task, timezone-aware UTC times).

    `store_path` is the history store (`costkit --store`); `filters` are those of
    `costkit.store.Store.tasks_frame`: project, region, status ("Running", "Succeeded", "Failed"), and
    since/until (aware datetimes; start_time in [since, until)). Raises costkit.core.errors.BadInput when
    there is no store at `store_path`.
    """
    from costkit.store.db import Store

    with Store.open(store_path, create=False, read_only=True) as store:
        return store.tasks_frame(**filters)
