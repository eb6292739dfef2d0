"""Deterministic, clearly synthetic task sets for the local IMM server (demo, benchmark, script use)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from costkit.testing.imm_tasks import make_task

UTC = timezone.utc


def synthetic_month_tasks(month: str = "2025-08", *, project: str = "demo-synthetic", per_day: int = 120,
                          seed: int = 20250801) -> list[dict]:
    """A deterministic, clearly synthetic month of tasks (tags {"synthetic": "true"}).

    Mostly ImageSplicing (about 4 % Failed, a few Running near the end), plus some MediaConvert and
    ImageToPDF tasks that a collector must skip. Days follow Asia/Shanghai (the billing month).
    """
    from zoneinfo import ZoneInfo

    year, mon = (int(x) for x in month.split("-"))
    sh = ZoneInfo("Asia/Shanghai")
    start = datetime(year, mon, 1, tzinfo=sh)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=sh)
    rng = random.Random(f"{seed}-{month}-{project}")
    tasks = []
    day = start
    n = 0
    while day < end:
        weekday_factor = 0.6 if day.weekday() >= 5 else 1.0
        count = int(per_day * weekday_factor * rng.uniform(0.8, 1.2))
        for _ in range(count):
            n += 1
            # Busier in Shanghai working hours.
            hour = rng.choices(range(24), weights=[1] * 8 + [4] * 10 + [2] * 6)[0]
            t = day + timedelta(hours=hour, seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
            if t >= end:
                continue
            kind = rng.random()
            task_type = "ImageSplicing" if kind < 0.88 else ("MediaConvert" if kind < 0.95 else "ImageToPDF")
            status = "Failed" if rng.random() < 0.04 else "Succeeded"
            if t > end - timedelta(minutes=20) and rng.random() < 0.5:
                status = "Running"
            images = rng.choice([2, 2, 3, 4, 4, 6, 8, 10])
            fmt = rng.choice(["jpg", "jpg", "jpg", "png", "webp"])
            tid = f"{task_type}-synthetic-{month}-{n:06d}"
            sources = [{"URI": f"oss://demo-synthetic-bucket/in/{tid}/{i}.jpg",
                        **({"Rotate": 90} if i == 1 and rng.random() < 0.2 else {})} for i in range(images)]
            tasks.append(make_task(
                project, start=t.astimezone(UTC), task_id=tid, status=status, task_type=task_type,
                duration=timedelta(milliseconds=rng.randrange(800, 9000)), sources=sources,
                target_uri=f"oss://demo-synthetic-bucket/out/{tid}.{fmt}", image_format=fmt,
                tags={"synthetic": "true", "team": rng.choice(["catalog", "ads", "ugc"])},
                user_data=json.dumps({"synthetic": True, "n": n})))
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)
    return tasks


def spread_tasks(n: int, *, days: float, project: str = "bench", end: datetime | None = None,
                 seed: int = 7) -> list[dict]:
    """n ImageSplicing tasks spread evenly over the `days` before `end` (default: now - 1 min)."""
    end = end or datetime.now(UTC) - timedelta(minutes=1)
    span = timedelta(days=days).total_seconds()
    rng = random.Random(seed)
    return [make_task(project, start=end - timedelta(seconds=span * (i + rng.random()) / n),
                      task_id=f"ImageSplicing-{seed}-{i:07d}", status="Failed" if i % 50 == 0 else "Succeeded")
            for i in range(n)]
