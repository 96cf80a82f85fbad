"""The reference loader in an environment with only numpy and onnxruntime.

``pip install --no-deps gameadapt`` into a fresh virtual environment that holds numpy and
onnxruntime and nothing else (no torch, no pluggy, no click): ``from gameadapt.ship.onnxpolicy
import OnnxPolicy`` must import, load a real export and act exactly as it does here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.ship.onnxpolicy import OnnxPolicy

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "engine", "plugins", "games")
OBSERVATIONS = np.random.default_rng(0).uniform(-1, 1, size=(16, 9)).round(6).tolist()
SCRIPT = """
import json, sys
from gameadapt.ship.onnxpolicy import OnnxPolicy
policy = OnnxPolicy.load(sys.argv[1], seed=0)  # a sampled export: the same noise
actions = [int(policy.act(o)) for o in json.loads(sys.argv[2])]
missing = []
for name in ("torch", "pluggy", "click", "gymnasium"):
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
print(json.dumps({"actions": actions, "missing": missing,
                  "loaded": sorted(m for m in sys.modules if m.startswith("gameadapt"))}))
"""


def run(*command: object, cwd: Path | None = None) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=600, check=False, cwd=cwd)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loader-export")
    for args in (["train", "gridnav", "--iterations", "1", "--meta-batch", "2",
                  "--envs-per-task", "2", "--device", "cpu", "--run-dir", str(root / "run")],
                 ["export", str(root / "run"), "-o", str(root / "export")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    return root / "export"


@pytest.mark.slow
def test_the_loader_installs_and_runs_with_only_numpy_and_onnxruntime(export: Path,
                                                                      tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so that building leaves nothing in the repository
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name)
    env = tmp_path / "env"
    run(sys.executable, "-m", "venv", env)
    python = env / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        f"numpy=={version('numpy')}", f"onnxruntime=={version('onnxruntime')}")
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", source)
    out = json.loads(run(python, "-c", SCRIPT, export, json.dumps(OBSERVATIONS),
                         cwd=tmp_path).strip().splitlines()[-1])
    assert out["missing"] == ["torch", "pluggy", "click", "gymnasium"]
    assert out["loaded"] == ["gameadapt", "gameadapt.ship", "gameadapt.ship.onnxpolicy"]
    here = OnnxPolicy.load(export, seed=0)
    assert out["actions"] == [int(here.act(o)) for o in OBSERVATIONS]
