"""Writing a finished report: to a file atomically, or to stdout."""
from __future__ import annotations

import sys
from pathlib import Path

from costkit.core.errors import BadInput


def write_output(text: str, out: str | None) -> None:
    """Write `text` to `out` (creating folders; a temporary file renamed into place, so a reader never sees
    half a report), or to stdout when `out` is None or `-`."""
    if out and out != "-":
        p = Path(out)
        tmp = p.with_name(p.name + ".tmp")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(p)
        except OSError as e:  # the CLI checks --out first; this is the disk filling up or a race
            if tmp.is_file():
                tmp.unlink()
            raise BadInput(f"cannot write {out}: {e.strerror or e}", field="--out") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
