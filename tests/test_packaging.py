"""A non-editable ``pip install .`` honours the folder-to-package mapping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the package with pip

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_builds_the_three_packages_and_the_entry_points(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert (target / "gameadapt" / "registry.py").is_file()
    assert (target / "gameadapt" / "games" / "gridnav" / "dynamics.py").is_file()
    assert (target / "gameadapt" / "plugins" / "maml.py").is_file()
    assert not (target / "engine").exists() and not (target / "games").exists()
    probe = ("import json, gameadapt, gameadapt.games.gridnav, gameadapt.plugins.maml;"
             "from gameadapt.host.registry import get_registry;"
             "r = get_registry();"
             "print(json.dumps({'file': gameadapt.__file__, 'version': gameadapt.__version__,"
             "'games': sorted(r.games), 'algorithms': sorted(r.algorithms)}))")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=tmp_path, env=env)
    data = json.loads(result.stdout)
    assert data["file"].startswith(str(target))
    assert data["version"] == "0.1.0"
    assert {"gridnav", "pointnav", "cartpole", "duel"} <= set(data["games"])
    assert {"maml", "fomaml", "reptile", "pretrain", "scratch"} <= set(data["algorithms"])
    scripts = list(target.glob("bin/gameadapt"))
    assert scripts, "the gameadapt console script was not installed"
