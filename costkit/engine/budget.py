"""Budgets for `costkit estimate --budget AMOUNT[/month]`: a horizon total or a monthly limit, checked
against a forecast model (exit 3 in the CLI when a month or the horizon passes it)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from costkit.core.errors import BadInput
from costkit.core.money import parse_decimal

_BUDGET = re.compile(r"^\s*(?P<amount>[^/\s]+)\s*(?:(?P<cur>[A-Za-z]{3})\s*)?(?:/\s*(?P<per>[A-Za-z]+))?\s*$")


@dataclass(frozen=True)
class Budget:
    """`amount` in the forecast's currency, for each month (`per_month`) or for the whole horizon."""

    amount: Decimal
    per_month: bool
    text: str

    def describe(self, currency: str) -> str:
        return f"{self.amount} {currency}{' per month' if self.per_month else ' over the horizon'}"


def parse_budget(text: str, currency: str | None = None) -> Budget:
    """`1000`, `1000/month`, `1000 CNY/month` -> Budget; BadInput (exit 2) otherwise, or when the
    currency named is not the forecast's."""
    m = _BUDGET.match(text or "")
    amount = parse_decimal(m["amount"]) if m else None
    if amount is None or amount < 0:
        raise BadInput(f"expected AMOUNT or AMOUNT/month with a plain non-negative decimal, got {text!r}",
                       field="--budget")
    if m["per"] is not None and m["per"].lower() not in ("month", "mo", "m"):
        raise BadInput(f"per {m['per']!r}: a budget is for the horizon (AMOUNT) or per month (AMOUNT/month)",
                       field="--budget")
    if m["cur"] and currency and m["cur"].upper() != currency:
        raise BadInput(f"{m['cur']} budget, but the forecast is in {currency}", field="--budget")
    return Budget(amount=amount, per_month=m["per"] is not None, text=text.strip())


def check_budget(model: dict, budget: Budget) -> dict:
    """The budget section of a forecast model: amount, per, passed (True, False, or None when prices are
    missing and the total so far is within it), the months or horizon over it, and a one-line message."""
    cur = model["currency"]
    complete = model.get("complete", True)
    what = budget.describe(cur)
    if budget.per_month:
        over = [{"month": m["month"], "total": m["total"]} for m in model["months"]
                if Decimal(m["total"]) > budget.amount]
        passed = bool(over)
        detail = (f"{len(over)} month(s) pass the budget of {what}: "
                  + ", ".join(f"{o['month']} ({o['total']} {cur})" for o in over)) if over else ""
    else:
        total = Decimal(model["total"])
        over = [{"horizon": f"{model['months'][0]['month']}..{model['months'][-1]['month']}",
                 "total": model["total"]}] if total > budget.amount else []
        passed = bool(over)
        detail = (f"the horizon total {model['total']} {cur} passes the budget of {what}") if over else ""
    excluding = "" if complete else f" ({model.get('total_label')}; the missing prices can only add to it)"
    if passed:
        message = detail + excluding
    elif complete:
        message = f"within the budget of {what}"
    else:
        passed = None
        message = (f"cannot tell whether the budget of {what} holds: the totals are {model.get('total_label')}; "
                   "see the break-even prices in the price sweep")
    return {"amount": str(budget.amount), "per": "month" if budget.per_month else "horizon",
            "passed": passed, "over": over, "message": message}


__all__ = ["Budget", "check_budget", "parse_budget"]
