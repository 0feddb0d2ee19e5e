"""A plain (not editable) install works from any folder: the wheel carries the default config and the
sample pages, and ``mirsad demo`` run far from the checkout stores and tags every sample page.

The wheel is built from the checkout and unpacked into a fresh virtual environment; the
dependencies come from the test environment's site-packages (added as a path, so its editable
install of this checkout is not seen): what runs is the wheel's code alone.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.stack_helpers import FAST_RECOVERY, free_port
from workers.core.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=out,
    )
    [built] = out.glob("mirsad-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel unpacked in it; its python."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(purelib)
    (purelib / "test-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return venv / "bin" / "python"


def test_the_wheel_ships_the_default_config_and_the_sample_pages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped_config = {Path(n).name for n in names if n.startswith("workers/defaults/config/")}
    assert shipped_config == {p.name for p in (PROJECT_ROOT / "config").glob("*.yaml")}
    shipped_pages = {Path(n).name for n in names if n.startswith("workers/defaults/pages/")}
    assert shipped_pages == {p.name for p in (PROJECT_ROOT / "seeds" / "pages").glob("*.html")}
    assert any(n.startswith("workers/storage/migrations/versions/") for n in names)
    for folder in ("templates", "static"):  # the web page, served by the API from the package itself
        shipped = {Path(n).name for n in names if n.startswith(f"workers/api/{folder}/")}
        assert shipped == {p.name for p in (PROJECT_ROOT / "workers" / "api" / folder).iterdir()}, folder


def test_mirsad_demo_from_an_installed_wheel_in_another_folder(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MIRSAD_CONFIG", "PYTHONPATH"))}
    env |= {
        **FAST_RECOVERY,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "TMPDIR": str(tmp_path),
    }
    env.pop("MIRSAD_DATABASE_URL", None)  # the default: a file under XDG_DATA_HOME
    where = subprocess.run(
        [str(installed), "-c", "import workers; print(workers.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not where.startswith(str(PROJECT_ROOT)), where
    demo = subprocess.run(
        [str(installed), "-m", "workers.cli", "demo", "--port", str(free_port()), "--timeout", "150"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "all 9 pages stored and tagged" in demo.stderr
    assert (home / ".config" / "mirsad" / "taxonomy.yaml").is_file()  # the user's folder, seeded on first run
    assert (home / ".local" / "share" / "mirsad" / "mirsad.db").is_file()
