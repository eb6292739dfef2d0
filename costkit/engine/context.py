"""What one pricing run of the stored history needs: its settings, price book, usage model and price
segments, and the DuckDB memory cap it runs under."""
from __future__ import annotations

import os
from contextlib import contextmanager

from costkit.core.errors import BadInput
from costkit.engine.coefficients import build_model
from costkit.engine.period import price_segments
from costkit.prices.book import load_price_book


def settings_book(settings, prices_file):
    """(settings, price book): `settings` or the default settings file, and the book of their site with
    `prices_file` and the settings' own prices layered on it (the one way the history is priced)."""
    from costkit.model.settings import load_settings
    settings = settings or load_settings(None)
    return settings, load_price_book(settings.site, prices_file=prices_file, scenario_prices=settings.splice.prices,
                                     scenario_path=settings.path)


def pricing_context(store, period, settings, prices_file):
    """(settings, price book, usage model, price segment bounds) for pricing `period` (see settings_book)."""
    settings, book = settings_book(settings, prices_file)
    model = build_model(settings)
    bounds = price_segments(book, model.imm_start, period)
    return settings, book, model, bounds


@contextmanager
def memory_limit(con, default: str | None = None):
    """Env COSTKIT_MEMORY_LIMIT (e.g. `2GB`) caps DuckDB's memory while pricing (it spills to disk beyond it);
    unset: `default`, else DuckDB's default (80 % of RAM)."""
    limit = os.environ.get("COSTKIT_MEMORY_LIMIT") or default
    if not limit:
        yield
        return
    try:
        con.execute(f"SET memory_limit = '{sql_str(limit)}'")
    except Exception as e:
        raise BadInput(f"not a DuckDB memory size: {limit!r} ({e})", field="COSTKIT_MEMORY_LIMIT") from None
    try:
        yield
    finally:   # the store never sets a limit of its own: back to DuckDB's default
        con.execute("RESET memory_limit")


def sql_str(text: str) -> str:
    """`text` quoted for a SQL string literal (quotes doubled)."""
    return text.replace("'", "''")


_context = pricing_context   # the name audit.reconcile and outputs.focus import

__all__ = ["pricing_context", "memory_limit", "sql_str"]
