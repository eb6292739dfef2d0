"""Writing a finished report: to a file atomically, or to stdout."""
from __future__ import annotations

import sys
from pathlib import Path


def write_output(text: str, out: str | None) -> None:
    """Write `text` to `out` (creating folders; a temporary file renamed into place, so a reader never sees
    half a report), or to stdout when `out` is None."""
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
