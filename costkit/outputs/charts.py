"""Charts for the HTML reports, drawn with matplotlib and returned as inline SVG markup.

Every helper returns an `<svg>` element (markupsafe.Markup) to be placed inside the report as is, so a report
stays one self-contained file. Text stays text (`svg.fonttype: none`): the browser draws it with the reader's
own fonts, so Chinese names render and print sharp. The SVG is deterministic (fixed hash salt, no date or
creator metadata) and carries no script, style element, external reference or document-level id clash.
Money arrives here already converted to float: floats are used for chart geometry only, never for the figures
printed in tables.

matplotlib is used through its object API (Figure + the Agg canvas), not pyplot: nothing registers in
pyplot's global figure list, the process-wide backend is left alone, and rcParams are changed only inside
a context manager that restores them.
"""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

from markupsafe import Markup

# Fixed palette (colour-blind friendly "tab10"-like order) so each series keeps its colour across runs.
PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)
LINE_COLOUR = "#222222"
LOW_COLOUR = "#4e79a7"
HIGH_COLOUR = "#e15759"

# Pinned settings: output must not depend on a user's matplotlibrc, and user text containing `$` must
# never be parsed as mathtext.
_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "text.parse_math": False,
    "svg.hashsalt": "costkit",
    "svg.fonttype": "none",
    "path.simplify": True,
}

DPI = 144
MAX_X_LABELS = 24


@contextmanager
def figure(width_in: float = 10.0, height_in: float = 4.8) -> Iterator[object]:
    """Yield a fresh matplotlib Figure (constrained layout) with the pinned style; always released after.

    The figure is attached to an Agg canvas directly, so no GUI backend or pyplot state is involved.
    """
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"), matplotlib.rc_context(_RC), warnings.catch_warnings():
        # DejaVu Sans has no CJK glyphs: only the layout estimate is affected, the browser draws the text.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        try:
            yield fig
        finally:
            fig.clear()


_ID = re.compile(r'\sid="([^"]+)"')
_REF = re.compile(r'(xlink:href="#|href="#|url\(#)([^")]+)')


def to_svg(fig) -> Markup:
    """Render a Figure as an inline `<svg class="chart-svg">` element (Markup) for an HTML report.

    The XML prolog, DOCTYPE, metadata and the embedded <style> are dropped (the report's stylesheet carries
    the line-join rule); the fixed pixel size is dropped so CSS sizes the chart from its viewBox. Ids that are
    referenced (markers, clip paths) get a prefix taken from the SVG's own hash, so several charts in one page
    never share an id and the output stays byte-for-byte reproducible; unreferenced ids are removed.
    """
    buf = io.StringIO()
    with warnings.catch_warnings():
        # Axis labels of very large (valid) figures can crowd the layout; the chart is still drawn.
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<style[^>]*>.*?</style>\s*", "", text, flags=re.S)
    text = re.sub(r"<defs>\s*</defs>\s*", "", text)
    text = re.sub(r"<svg [^>]*?(viewBox=\"[^\"]+\")[^>]*>",
                  r'<svg class="chart-svg" xmlns="http://www.w3.org/2000/svg" '
                  r'xmlns:xlink="http://www.w3.org/1999/xlink" \1 preserveAspectRatio="xMidYMid meet" '
                  r'aria-hidden="true" focusable="false">', text, count=1)
    prefix = "c" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    referenced = {m.group(2) for m in _REF.finditer(text)}
    text = _ID.sub(lambda m: f' id="{prefix}-{m.group(1)}"' if m.group(1) in referenced else "", text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    if "<script" in text.lower() or "<foreignobject" in text.lower():
        raise ValueError("chart SVG must not carry scripts or foreign content")
    return Markup(text.strip())


def _money_formatter(span: float):
    """A tick formatter with thousands separators; 2 decimals when the axis spans less than 10 units."""
    from matplotlib.ticker import FuncFormatter

    if span < 10:
        return FuncFormatter(lambda v, _pos: f"{v:,.2f}")
    return FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _thin_x_labels(ax, labels: Sequence[str]) -> None:
    """Label at most MAX_X_LABELS categories (every n-th) so long horizons stay readable."""
    n = len(labels)
    step = max(1, -(-n // MAX_X_LABELS))
    ax.set_xticks(range(0, n, step))
    ax.set_xticklabels([labels[i] for i in range(0, n, step)],
                       rotation=45 if n > 6 else 0, ha="right" if n > 6 else "center")


def stacked_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str = "",
    line: Sequence[float] | None = None,
    line_label: str = "Cumulative",
    line_ylabel: str = "",
    colours: Mapping[str, str] | None = None,
) -> Markup:
    """A stacked bar chart, one bar per category, one stacked segment per series, returned as inline SVG (see to_svg).

    `categories` are the x labels (e.g. months `YYYY-MM`); `series` maps a legend label (e.g. an item key)
    to one value per category, in the unit named by `ylabel` (e.g. "Cost (CNY)"). Positive values stack up
    from 0, negative ones (credits) stack down. Series that are zero everywhere are left out of the legend,
which lists the series top to bottom in the order they are stacked (top segment first).
    `line`, when given, is drawn on a secondary y axis labelled `line_ylabel` (e.g. the cumulative total).
    """
    cats = list(categories)
    x = list(range(len(cats)))
    with figure() as fig:
        ax = fig.add_subplot()
        pos_bottom = [0.0] * len(cats)
        neg_bottom = [0.0] * len(cats)
        handles, labels = [], []
        for i, (label, values) in enumerate(series.items()):
            vals = [float(v) for v in values]
            if len(vals) != len(cats):
                raise ValueError(f"series {label!r} has {len(vals)} values for {len(cats)} categories")
            if not any(vals):
                continue
            bottoms = [pos_bottom[j] if v >= 0 else neg_bottom[j] for j, v in enumerate(vals)]
            colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
            bars = ax.bar(x, vals, bottom=bottoms, color=colour, width=0.8, label=label, linewidth=0)
            for j, v in enumerate(vals):
                if v >= 0:
                    pos_bottom[j] += v
                else:
                    neg_bottom[j] += v
            handles.append(bars)
            labels.append(label)
        ax.set_xlim(-0.6, len(cats) - 0.4)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        lo, hi = min(neg_bottom, default=0.0), max(pos_bottom, default=0.0)
        ax.yaxis.set_major_formatter(_money_formatter(hi - lo))
        if lo == hi == 0.0:
            ax.set_ylim(0, 1)
        _thin_x_labels(ax, cats)
        if line is not None:
            lvals = [float(v) for v in line]
            ax2 = ax.twinx()
            ax2.grid(False)
            (ln,) = ax2.plot(x, lvals, color=LINE_COLOUR, marker="o", markersize=3, linewidth=1.6,
                             label=line_label)
            ax2.set_ylabel(line_ylabel or line_label)
            ax2.set_ylim(bottom=min(0.0, min(lvals, default=0.0)))
            if not any(lvals):
                ax2.set_ylim(0, 1)
            ax2.yaxis.set_major_formatter(_money_formatter(max(lvals, default=0.0)))
            handles.append(ln)
            labels.append(line_label)
        if handles:
            # The legend reads top to bottom like the stack: the last series drawn sits on top, so it comes
            # first; the line (not part of the stack) comes last.
            n_bars = len(handles) - (1 if line is not None else 0)
            order = list(range(n_bars))[::-1] + list(range(n_bars, len(handles)))
            fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside right upper",
                       ncol=1, frameon=False)
        return to_svg(fig)


def line_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    ylabel: str,
    title: str = "",
    colours: Mapping[str, str] | None = None,
    height_in: float = 4.8,
) -> Markup:
    """A line chart with one line per series over shared categories, returned as inline SVG (see to_svg).

    `series` maps a legend label (e.g. "forecast", "billed") to one value per category in the unit named by
    `ylabel` (e.g. "Cost (CNY)"); None leaves a gap (a month with no data). `height_in`: the figure's height
    in inches (10 wide).
    """
    cats = list(categories)
    x = list(range(len(cats)))
    with figure(10.0, height_in) as fig:
        ax = fig.add_subplot()
        top = 0.0
        for i, (label, values) in enumerate(series.items()):
            vals = [float("nan") if v is None else float(v) for v in values]
            if len(vals) != len(cats):
                raise ValueError(f"series {label!r} has {len(vals)} values for {len(cats)} categories")
            colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
            ax.plot(x, vals, color=colour, marker="o", markersize=3, linewidth=1.6, label=label)
            top = max([top] + [v for v in vals if v == v])
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.yaxis.set_major_formatter(_money_formatter(top))
        if top == 0.0:
            ax.set_ylim(0, 1)
        if cats:
            ax.set_xlim(-0.5, len(cats) - 0.5)
        _thin_x_labels(ax, cats)
        if series:
            fig.legend(loc="outside lower center", ncol=min(5, len(series)), frameon=False)
        return to_svg(fig)


def tornado(
    rows: Sequence[Mapping[str, object]],
    *,
    base: float,
    xlabel: str,
    title: str = "",
    low_label: str = "driver low",
    high_label: str = "driver high",
) -> Markup:
    """A tornado (sensitivity) chart, returned as inline SVG (see to_svg).

    Each row is `{"label": str, "low": float, "high": float}` plus optional `low_text` / `high_text`
    (preformatted strings printed at the bar ends, e.g. exact decimal totals): the result (e.g. the horizon total in the
    currency named by `xlabel`) when that driver is at its low and at its high value. Each driver gets a
    horizontal bar from `base` to its low result and from `base` to its high result, so the bar spans
    low..high around the base. Rows are drawn in the order given, the first at the top: sort by swing first.
    """
    n = len(rows)
    height = max(2.4, 1.2 + 0.55 * n)
    with figure(10.0, height) as fig:
        ax = fig.add_subplot()
        ys = list(range(n))[::-1]
        for y, row in zip(ys, rows):
            low, high = float(row["low"]), float(row["high"])
            ax.barh(y, low - base, left=base, color=LOW_COLOUR, height=0.6,
                    label=low_label if y == ys[0] else None)
            ax.barh(y, high - base, left=base, color=HIGH_COLOUR, height=0.6,
                    label=high_label if y == ys[0] else None)
            for value, key in ((low, "low_text"), (high, "high_text")):
                if row.get(key):
                    # Text goes on the outer end of each segment; both sides of base get their own label.
                    right = value >= base
                    ax.annotate(str(row[key]), (value, y), xytext=(4 if right else -4, 0),
                                textcoords="offset points", va="center", ha="left" if right else "right",
                                fontsize=8)
        ax.axvline(base, color=LINE_COLOUR, linewidth=1.2)
        ax.set_yticks(ys)
        ax.set_yticklabels([str(r["label"]) for r in rows])
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        if title:
            ax.set_title(title)
        values = [base] + [float(r[k]) for r in rows for k in ("low", "high")]
        span = max(values) - min(values)
        pad = span * 0.15 or max(abs(base) * 0.05, 1.0)
        ax.set_xlim(min(values) - pad, max(values) + pad)
        ax.xaxis.set_major_formatter(_money_formatter(span))
        if n:
            ax.set_ylim(-0.6, n - 0.4)
            fig.legend(loc="outside lower center", ncol=2, frameon=False)
        return to_svg(fig)


def band_chart(
    categories: Sequence[str],
    expected: Sequence[float],
    actual: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    anomalies: Sequence[bool],
    *,
    ylabel: str,
    expected_label: str = "expected",
    actual_label: str = "billed",
    band_label: str = "tolerance band",
    anomaly_label: str = "anomaly",
) -> Markup:
    """Expected against actual per category (e.g. per day) with the tolerance band shaded between `low` and
    `high` and the categories flagged in `anomalies` marked; returned as inline SVG (see to_svg). Values in
    the unit named by `ylabel`."""
    cats = list(categories)
    x = list(range(len(cats)))
    with figure(10.0, 4.2) as fig:
        ax = fig.add_subplot()
        ax.fill_between(x, [float(v) for v in low], [float(v) for v in high], color=PALETTE[0], alpha=0.18,
                        linewidth=0, label=band_label, step=None)
        ax.plot(x, [float(v) for v in expected], color=PALETTE[0], marker="o", markersize=3, linewidth=1.6,
                label=expected_label)
        ax.plot(x, [float(v) for v in actual], color=PALETTE[1], marker="o", markersize=3, linewidth=1.6,
                label=actual_label)
        flagged = [i for i, a in enumerate(anomalies) if a]
        if flagged:
            ax.scatter(flagged, [float(actual[i]) for i in flagged], s=70, facecolors="none",
                       edgecolors=HIGH_COLOUR, linewidths=1.8, zorder=5, label=anomaly_label)
        top = max([0.0] + [float(v) for v in (*high, *actual)])
        ax.set_ylim(min([0.0] + [float(v) for v in (*low, *actual)]), top * 1.08 or 1)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(_money_formatter(top))
        if cats:
            ax.set_xlim(-0.5, len(cats) - 0.5)
        _thin_x_labels(ax, cats)
        fig.legend(loc="outside lower center", ncol=4, frameon=False)
        return to_svg(fig)


STEP_UP, STEP_DOWN, TOTAL_COLOUR = HIGH_COLOUR, "#59a14f", "#6b6b6b"


def waterfall(rows: Sequence[Mapping[str, object]], *, xlabel: str) -> Markup:
    """A horizontal waterfall (bridge), top to bottom, returned as inline SVG (see to_svg).

    Each row is `{"label": str, "start": float, "end": float, "total": bool, "text": str}`: a total bar
    spans 0..end (e.g. expected, billed), a step bar spans start..end (a cause: red when it raises the
    amount, green when it lowers it), and `text` (the exact amount, preformatted) is printed at its end.
    Every step also gets a thin tick at its end, so a cent of rounding still shows as its own small bar."""
    n = len(rows)
    with figure(7.0, max(2.0, 0.9 + 0.36 * n)) as fig:
        ax = fig.add_subplot()
        ys = list(range(n))[::-1]
        ends = [0.0]
        for y, row in zip(ys, rows):
            start, end = (0.0, float(row["end"])) if row.get("total") else (float(row["start"]), float(row["end"]))
            colour = TOTAL_COLOUR if row.get("total") else (STEP_UP if end > start else STEP_DOWN)
            ax.barh(y, end - start, left=start, color=colour, height=0.62, linewidth=0)
            if not row.get("total"):
                ax.plot([end, end], [y - 0.31, y + 0.31], color=LINE_COLOUR, linewidth=0.9)
            ax.annotate(str(row.get("text", "")), (max(start, end), y), xytext=(4, 0), textcoords="offset points",
                        va="center", ha="left", fontsize=8)
            ends += [start, end]
        for (y0, r0), (y1, _r1) in zip(zip(ys, rows), zip(ys[1:], rows[1:])):
            # Connectors: each bar starts where the one above it ended.
            ax.plot([float(r0["end"])] * 2, [y0 - 0.31, y1 + 0.31], color="#999999", linewidth=0.6)
        lo, hi = min(ends), max(ends)
        pad = (hi - lo) * 0.18 or 1.0
        ax.set_xlim(min(0.0, lo), hi + pad)
        ax.set_yticks(ys)
        ax.set_yticklabels([str(r["label"]) for r in rows])
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_formatter(_money_formatter(hi - lo))
        if n:
            ax.set_ylim(-0.6, n - 0.4)
        return to_svg(fig)
