"""A non-editable install works: the wheel carries every package and data file.

An editable install hides a missing package or data file, so this builds the wheel, installs it with
--no-deps into a fresh venv that sees the test environment's packages, and runs the CLI from outside the
checkout.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin dir, env) of a fresh venv with the costkit wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(base / "dist"), str(ROOT)])
    assert build.returncode == 0, build.stderr
    wheels = list((base / "dist").glob("costkit-*.whl"))
    assert len(wheels) == 1
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(env_dir), "platbase": str(env_dir)}))
    # The test environment's packages, without its .pth files (which hold the editable costkit).
    (site / "test-env.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    py = env_dir / "bin" / "python"
    inst = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                 str(wheels[0])]) if _pip_has_python_flag() else _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheels[0])])
    assert inst.returncode == 0, inst.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env_dir / "bin", env, site


def _pip_has_python_flag() -> bool:
    import pip

    return tuple(int(x) for x in pip.__version__.split(".")[:2]) >= (22, 3)


def test_the_wheel_installs_the_cli_outside_the_checkout(installed, tmp_path):
    bindir, env, site = installed
    costkit = bindir / "costkit"
    if not costkit.exists():  # pip --target writes scripts elsewhere; run the module instead
        costkit = None
    cmd = [str(costkit)] if costkit else [str(bindir / "python"), "-m", "costkit.cli.main"]
    out = _run([*cmd, "--version"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "0.1.0" in out.stdout


def test_the_wheel_imports_costkit_from_its_own_site_packages(installed, tmp_path):
    bindir, env, site = installed
    out = _run([str(bindir / "python"), "-c", "import costkit; print(costkit.__file__)"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve().is_relative_to(site.resolve())


def test_the_wheel_estimates_the_bundled_scenario(installed, tmp_path):
    bindir, env, site = installed
    scenario = site / "costkit" / "data" / "demo-scenario.yaml"
    assert scenario.exists()
    out = _run([str(bindir / "python"), "-m", "costkit.cli.main", "estimate", str(scenario), "--format", "json"],
               cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert '"months"' in out.stdout


def test_the_wheel_carries_price_books_templates_and_data(installed):
    _, _, site = installed
    for rel in ("costkit/pricing_books/cn.yaml", "costkit/pricing_books/intl.yaml", "costkit/reports/base.html.j2",
                "costkit/reports/style.css", "costkit/data/bill-mapping.yaml", "costkit/data/focus-columns.yaml"):
        assert (site / rel).exists(), rel
