"""The demo's synthetic month, collected from the in-package IMM server through the real SDK."""
from costkit.demo.history import SYNTHETIC_PROJECT, run_synthetic_collection
from costkit.store.db import Store
from costkit.testing.imm_server import synthetic_month_tasks


def test_synthetic_month_is_collected_completely_and_labelled_synthetic(tmp_path):
    path = tmp_path / "demo.duckdb"
    s = run_synthetic_collection(path, "2025-02", per_day=15)
    with Store.open(path) as st:
        df = st.tasks_frame()
    served = {t["TaskId"] for t in synthetic_month_tasks("2025-02", per_day=15) if t["TaskType"] == "ImageSplicing"}
    assert set(df["task_id"]) == served and len(df) == s.served_splices == s.new
    assert s.served_other > 0 and s.runs == 28 + 1 and s.warnings == []
    assert set(df["project"]) == {SYNTHETIC_PROJECT}
    assert all(t.get("synthetic") == "true" for t in df["tags"])
    assert {"Succeeded", "Failed"} <= set(df["status"]) and "Running" not in set(df["status"])
    # Times are those of the synthetic month (Asia/Shanghai), not of the wall clock.
    local = df["start_time"].dt.tz_convert("Asia/Shanghai")
    assert set(local.dt.strftime("%Y-%m")) == {"2025-02"}
    assert "SYNTHETIC 2025-02" in s.line()


def test_synthetic_month_is_deterministic():
    a = synthetic_month_tasks("2025-08", per_day=10)
    b = synthetic_month_tasks("2025-08", per_day=10)
    assert a == b and a != synthetic_month_tasks("2025-09", per_day=10)
