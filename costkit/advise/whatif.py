"""What-ifs: a change applied to the object facts, the tasks and the settings, priced by replaying the same
tasks through the same engine (`costkit.engine.history.price_history`).

The change never reaches the stored history: the overlay runs inside one DuckDB transaction on the store's
connection, which is always rolled back (an error or a kill leaves the store as it was). Inside it:
- the affected tasks are marked with the tag `costkit_advise` so that the engine's `--by tag:` grouping
  gives their charges apart, exactly as `cost --month --by tag:...` would count them;
- `object_class` rewrites the storage class of object facts (a target written, or a source kept, in another
  class: the engine then prices its storage, minimum size, early deletion, PUT and GET prices by that class);
- `drop_tasks` removes tasks that would not run under the change;
- `settings` replaces splice settings (e.g. `accelerated_gb_per_task`) on a copy of the settings.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from costkit.core.errors import RuntimeFailure
from costkit.core.money import ZERO
from costkit.engine.history import price_history
from costkit.store.values import quietly

MARK = "costkit_advise"
AFFECTED = "affected"


@dataclass
class WhatIf:
    """A change for the engine to price (see the module doc)."""

    object_class: dict = field(default_factory=dict)   # uri -> storage class
    drop_tasks: set = field(default_factory=set)       # task rowids that would not run
    settings: dict = field(default_factory=dict)       # Scenario attribute -> value

    def merged(self, other: "WhatIf") -> "WhatIf":
        """This change and `other` together (`other` wins where both set the same object or setting)."""
        return WhatIf({**self.object_class, **other.object_class}, self.drop_tasks | other.drop_tasks,
                      {**self.settings, **other.settings})


@dataclass
class Adjustment:
    """A monthly amount outside what the engine prices (e.g. source storage, reads outside splicing), from
    the price book: positive saves, negative costs. `amount` is exact (book currency)."""

    label: str
    amount: Fraction
    prices: list = field(default_factory=list)   # the PriceEntry objects it used (for the confidence)


@dataclass
class Proposal:
    """What a rule returns: one change with its evidence, for `costkit.advise.run` to price.

    `affected` are the task rowids whose charges the change touches; `items` the billing items it changes
    (the replay adds any other item that differs); `one_time` (label, item, selectors, quantity in base
    units) the charges of making the change once; `adjustments` monthly amounts the engine does not price;
    `needs` the `advise:` settings the rule lacks; `counts` whether the saving counts in the month's
    possible saving (False when it rests on data costkit does not have)."""

    rule: str
    change: str
    whatif: WhatIf | None
    affected: set
    evidence: dict
    risk: str
    items: tuple = ()
    one_time: list = field(default_factory=list)
    adjustments: list = field(default_factory=list)
    needs: list = field(default_factory=list)
    counts: bool = True
    positive_only: bool = False   # drop the finding when the replay shows no saving
    note: str = ""


def _settings_with(settings, overrides: dict):
    s = copy.deepcopy(settings)
    for k, v in overrides.items():
        setattr(s.splice, k, v)
    return s


def _mark(con, tids) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE _advise_tids (tid BIGINT)")
    if tids:
        con.executemany("INSERT INTO _advise_tids VALUES (?)", [(int(t),) for t in sorted(tids)])
    con.execute(f"""UPDATE tasks SET tags = '{{"{MARK}": "{AFFECTED}"}}'
                    WHERE rowid IN (SELECT tid FROM _advise_tids)""")


def _apply(con, w: WhatIf) -> None:
    if w.object_class:
        con.execute("CREATE OR REPLACE TEMP TABLE _advise_cls (uri VARCHAR, cls VARCHAR)")
        con.executemany("INSERT INTO _advise_cls VALUES (?, ?)", sorted(w.object_class.items()))
        con.execute("UPDATE objects SET storage_class = c.cls FROM _advise_cls c WHERE objects.uri = c.uri")
    if w.drop_tasks:
        con.execute("CREATE OR REPLACE TEMP TABLE _advise_drop (tid BIGINT)")
        con.executemany("INSERT INTO _advise_drop VALUES (?)", [(int(t),) for t in sorted(w.drop_tasks)])
        con.execute("DELETE FROM tasks WHERE rowid IN (SELECT tid FROM _advise_drop)")


def replay(ctx, whatif: WhatIf, affected: set) -> tuple[dict, dict]:
    """(today, after): the period's cost reports grouped by the affected mark, without and with `whatif`,
    both from `price_history` on the same tasks. The store is unchanged afterwards."""
    store = ctx.store
    with store._lock:
        if store._depth:
            raise RuntimeFailure(f"{store.path}: cannot replay a change inside an open store transaction")
        con = store._con
        con.execute("BEGIN TRANSACTION")
        try:
            _mark(con, affected)
            kw = {"by": f"tag:{MARK}", "prices_file": ctx.prices_file}
            today = price_history(store, ctx.period, settings=ctx.settings, **kw)
            _apply(con, whatif)
            after = price_history(store, ctx.period, settings=_settings_with(ctx.settings, whatif.settings), **kw)
        finally:
            quietly(con.execute, "ROLLBACK")
    return today, after


def group_items(report: dict, group: str = AFFECTED) -> dict:
    """item -> Decimal amount of `group` in a grouped report (zeros when the group has no charges)."""
    for g in report["groups"]:
        if g["group"] == group:
            return {k: Decimal(v) for k, v in g["items"].items()}
    return {k: ZERO for k in report["items"]}


__all__ = ["WhatIf", "Adjustment", "Proposal", "replay", "group_items", "MARK", "AFFECTED"]
