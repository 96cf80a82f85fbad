"""A non-editable ``pip install .`` honours the folder-to-package mapping."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds and installs the package with pip

ROOT = Path(__file__).resolve().parents[1]


def source_copy(folder: Path) -> Path:
    """What a clean checkout holds for the build (no stale ``build/`` from an earlier one)."""
    folder.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, folder / name)
    for name in ("engine", "games", "plugins"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_pip_install_builds_the_three_packages_and_the_entry_points(tmp_path: Path) -> None:
    target = tmp_path / "site"
    source = source_copy(Path(tmp_path / "src"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
         "--target", str(target), str(source)],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert (target / "gameadapt" / "host" / "registry.py").is_file()
    assert (target / "gameadapt" / "ship" / "onnxpolicy.py").is_file()
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
