"""What `pip install .` ships: the web page and the automations file live inside the package, so the
service and `autoclip automations apply` work from an installed copy, not only from a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_wheel_carries_the_page_and_the_automations(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "autoclip", source / "autoclip", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = tmp_path.glob("auto_clip-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"autoclip/ops/automations.yaml", "autoclip/api/static/index.html", "autoclip/api/static/app.js",
            "autoclip/api/static/style.css"} <= names
    from autoclip.ops.automations import DEFAULT_FILE

    assert DEFAULT_FILE == Path(__import__("autoclip.ops").ops.__file__).parent / "automations.yaml"
