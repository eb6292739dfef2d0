"""The store's schema: the ordered migrations (DDL) and how a file is brought up to the newest one.

Tables (see `_migration_1`):
- `tasks`, keyed by (region, project, task_id): the normalised records of `costkit.taskrecord`, with
  first_seen and last_seen;
- `collection_runs`: one row per collection run (window, pages, counts, errors, ok);
- `checkpoints`: per (region, project), the instant up to which collection is complete;
- `imports`: one row per imported file and (region, project), with the span of task start times it held;
- `objects` and `buckets`: OSS facts cached by `costkit inventory`;
- `bill_imports` and `bill_lines`: imported bills;
- `schema_version`: the migrations applied.
"""
from __future__ import annotations

from costkit.core.errors import RuntimeFailure
from costkit.store.taskrows import digest_sql
from costkit.store.values import utc_now

_SOURCE_TYPE = "STRUCT(uri VARCHAR, rotate INTEGER)[]"


def _migration_1(con) -> None:
    con.execute(f"""
        CREATE TABLE tasks (
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            task_id VARCHAR NOT NULL,
            task_type VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('Running', 'Succeeded', 'Failed')),
            code VARCHAR,
            message VARCHAR,
            start_time TIMESTAMPTZ,
            end_time TIMESTAMPTZ,
            sources {_SOURCE_TYPE},
            target_uri VARCHAR,
            image_format VARCHAR,
            direction VARCHAR,
            scale_type VARCHAR,
            align INTEGER,
            padding INTEGER,
            margin INTEGER,
            background_color VARCHAR,
            quality INTEGER,
            tags VARCHAR,            -- JSON object text, keys sorted; NULL when the task has none known
            user_data VARCHAR,
            origin VARCHAR NOT NULL CHECK (origin IN ('listtasks', 'notification', 'import')),
            first_seen TIMESTAMPTZ NOT NULL,
            last_seen TIMESTAMPTZ NOT NULL,
            key_hash BIGINT NOT NULL,  -- _key_hash(region, project, task_id): a cheap probe for known keys
            PRIMARY KEY (region, project, task_id)
        )""")
    con.execute("CREATE SEQUENCE collection_run_id START 1")
    con.execute("""
        CREATE TABLE collection_runs (
            id BIGINT PRIMARY KEY DEFAULT nextval('collection_run_id'),
            kind VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            window_start TIMESTAMPTZ,
            window_end TIMESTAMPTZ,
            pages INTEGER,
            new INTEGER,
            updated INTEGER,
            unchanged INTEGER,
            errors VARCHAR,          -- JSON array of strings
            ok BOOLEAN
        )""")
    con.execute("""
        CREATE TABLE checkpoints (
            region VARCHAR NOT NULL,
            project VARCHAR NOT NULL,
            "until" TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (region, project)
        )""")
    con.execute("CREATE SEQUENCE import_id START 1")
    con.execute("""
        CREATE TABLE imports (
            id BIGINT PRIMARY KEY DEFAULT nextval('import_id'),
            file VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            "at" TIMESTAMPTZ NOT NULL,
            region VARCHAR,
            project VARCHAR,
            window_start TIMESTAMPTZ,  -- earliest and latest task start time in the file
            window_end TIMESTAMPTZ,
            counts VARCHAR NOT NULL    -- JSON object: new, updated, unchanged, skipped, bad
        )""")


def _migration_objects_buckets(con) -> None:
    """OSS facts cached by `costkit inventory` (costkit.inventory documents the columns)."""
    con.execute("""
        CREATE TABLE objects (
            uri VARCHAR PRIMARY KEY,     -- oss://bucket/key, as the tasks reference it
            bucket VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            size BIGINT,
            storage_class VARCHAR,
            last_modified TIMESTAMPTZ,
            restore_state VARCHAR,       -- NULL (never requested), 'ongoing' or 'restored'
            restore_expiry TIMESTAMPTZ,
            gone BOOLEAN NOT NULL,
            gone_since TIMESTAMPTZ,      -- the first check that found the object missing
            checked_at TIMESTAMPTZ NOT NULL,
            via VARCHAR NOT NULL         -- 'list', 'head' or 'bucket' (the bucket is gone)
        )""")
    con.execute("""
        CREATE TABLE buckets (
            bucket VARCHAR PRIMARY KEY,
            found BOOLEAN NOT NULL,
            location VARCHAR,
            storage_class VARCHAR,
            redundancy VARCHAR,
            transfer_acceleration BOOLEAN,
            archive_direct_read BOOLEAN,
            archive_direct_read_source VARCHAR,  -- 'api', 'config' or 'default'
            checked_at TIMESTAMPTZ NOT NULL
        )""")


def _migration_bills(con) -> None:
    """Bill imports and lines (`costkit.store.bills.migration_bills` documents the columns)."""
    from costkit.store.bills import migration_bills
    migration_bills(con)



def _migration_task_digest(con) -> None:
    """tasks.digest: a hash of a row's data fields, so re-seen identical tasks skip the full merge."""
    con.execute("ALTER TABLE tasks ADD COLUMN digest UBIGINT")
    con.execute(f"UPDATE tasks SET digest = {digest_sql('tasks')}")


def _migration_lifecycle(con) -> None:
    """Lifecycle rules of the target buckets, one row per action (`costkit.sources.oss.lifecycle` documents
    the columns), the object tags their tag filters are matched against, and the span each collection run
    covered."""
    con.execute("""
        CREATE TABLE lifecycle_rules (
            bucket VARCHAR NOT NULL,
            rule_id VARCHAR,
            seq INTEGER NOT NULL,          -- the action's position in the bucket's configuration
            enabled BOOLEAN NOT NULL,
            prefix VARCHAR NOT NULL,       -- '' = every key
            tag_pairs VARCHAR[],           -- the rule's tags as key || chr(31) || value; NULL = no tag filter
            not_prefix VARCHAR,            -- Filter/Not: keys under it (and with not_tag_pairs) are excluded
            not_tag_pairs VARCHAR[],
            size_gt BIGINT,                -- Filter/ObjectSizeGreaterThan, bytes
            size_lt BIGINT,
            action VARCHAR NOT NULL CHECK (action IN ('expire', 'transition')),
            days INTEGER,                  -- counted from LastModified rounded up to 00:00 UTC
            before_date TIMESTAMPTZ,       -- Date / CreatedBeforeDate: objects last modified before it
            storage_class VARCHAR,         -- a transition's class
            checked_at TIMESTAMPTZ NOT NULL
        )""")
    con.execute("ALTER TABLE objects ADD COLUMN tag_pairs VARCHAR[]")   # NULL: not read
    # The span a collection run covered: window_start up to here (a failed run: its completed prefix).
    con.execute("ALTER TABLE collection_runs ADD COLUMN covered_end TIMESTAMPTZ")


def _migration_bill_identity(con) -> None:
    """Bill lines keyed by their natural key; imports with their scope (`costkit.store.bill_identity`)."""
    from costkit.store.bill_identity import migration_bill_identity
    migration_bill_identity(con)


# Ordered; never edit or reorder an applied migration: append a new one (version = index + 1).
MIGRATIONS = [_migration_1, _migration_objects_buckets, _migration_bills, _migration_task_digest,
              _migration_lifecycle, _migration_bill_identity]



def migrate(store) -> None:
    """Apply the migrations `store` lacks, each in its own transaction; raises RuntimeFailure for a file
    from a newer costkit."""
    con = store._con
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMPTZ NOT NULL)")
    current = store.schema_version
    if current > len(MIGRATIONS):
        raise RuntimeFailure(f"{store.path}: the store has schema version {current}, newer than this costkit "
                             f"understands ({len(MIGRATIONS)}); upgrade costkit")
    for version in range(current + 1, len(MIGRATIONS) + 1):
        # Each migration and its version row commit together: a crash leaves the previous version.
        with store.transaction():
            MIGRATIONS[version - 1](con)
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utc_now()])
