"""What the benchmarks share: each phase runs in a child process of its own (so its peak RSS is its own)
and prints one JSON line."""
from __future__ import annotations

import json
import resource
import subprocess
import sys


def rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(script: str, *args, env=None) -> dict:
    """Run `script --phase ...` in a child process; its last stdout line, parsed as JSON."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"phase {args[1]} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
