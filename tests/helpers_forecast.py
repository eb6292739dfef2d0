"""Builders for scenario files used by the forecast tests."""
import textwrap

import yaml

BASE = {
    "name": "t", "site": "cn", "start": "2025-09", "months": 1, "tasks_per_month": 720000,
    "sources_per_task": 2, "source_size_mb": "1", "target_size_mb": "1",
}

SPLICE_PRICE = {"item": "imm.ImageSplicing", "unit": "1000 calls", "price": "1", "currency": "CNY",
                "effective_from": "2025-07-28T11:00:00+08:00", "confidence": "contract", "source": "test contract"}


def scenario_yaml(**over) -> str:
    data = dict(BASE)
    data.setdefault("prices", [SPLICE_PRICE])
    data.update(over)
    data = {k: v for k, v in data.items() if v is not ...}
    return yaml.safe_dump(data, sort_keys=False)


def write_scenario(tmp_path, filename="s.yaml", text=None, **over):
    p = tmp_path / filename
    p.write_text(textwrap.dedent(text) if text is not None else scenario_yaml(**over), encoding="utf-8")
    return p
