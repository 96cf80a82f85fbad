"""Shared test helpers: plugin packages installed with pip, fake in-process plugins.

The pip-installed plugin packages (the example plugin and the broken / duplicate test
plugins) are built and installed once per session, with this interpreter's pip, into a
private ``--target`` folder. Only the tests that ask for :func:`installed_plugins` see them
(the folder is put on ``sys.path`` for that test only), so the virtual environment itself is
never changed: other tests, and other test sessions sharing the environment, are unaffected,
and a killed session leaves nothing installed behind.
"""

from __future__ import annotations

import importlib
import os
import shutil
import site
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gameadapt
import gymnasium
import numpy as np
import pytest
from gameadapt.game import GameSpec
from gameadapt.host.registry import LOAD_PLUGINS_ENV, reset_registry
from gameadapt.variants import VariantSpace

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
EXAMPLE_PACKAGE = REPO_ROOT / "examples" / "gameadapt-example"
PLUGIN_PACKAGES: dict[str, Path] = {
    "gameadapt-example": EXAMPLE_PACKAGE,
    **{name: TESTS_DIR / "plugin_packages" / name for name in (
        "gameadapt-broken",  # fails at import
        "gameadapt-duplicate",  # claims the built-in id gridnav
        "gameadapt-chase",  # owns chase ...
        "gameadapt-hijack",  # ... which this one claims too (entry point aaa_hijack)
        "gameadapt-typos",  # a misspelt hook, an unmarked hook, a misspelt group
        "gameadapt-badspaces",  # declared spaces that its views do not return
    )},
}


def pip_install(target: Path, sources: list[Path]) -> None:
    """``python -m pip install --no-deps --no-build-isolation -q --target TARGET SOURCES...``.

    An argument list, never a shell; fails the test with pip's output if pip fails.
    """
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install",
               "--no-deps", "--no-build-isolation", "-q", "--target", str(target),
               *map(str, sources)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        pytest.fail(f"pip install failed ({completed.returncode}):\n{completed.stdout}\n"
                    f"{completed.stderr}")


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed plugin packages (built and installed once per session).

    The sources are copied first so that building them leaves no ``build/`` or
    ``*.egg-info`` folders in the repository.
    """
    root = tmp_path_factory.mktemp("plugin-packages")
    sources = []
    for name, source in PLUGIN_PACKAGES.items():
        copy = root / "src" / name
        shutil.copytree(source, copy,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        sources.append(copy)
    site = root / "site"
    pip_install(site, sources)
    return site


@pytest.fixture
def installed_plugins(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The pip-installed plugins visible to this test, with a fresh registry before and after.

    ``GAMEADAPT_LOAD_PLUGINS`` starts unset (load every plugin); tests may set it with
    ``monkeypatch``, which restores it afterwards.
    """
    monkeypatch.syspath_prepend(str(plugin_site))  # also invalidates the import caches
    monkeypatch.delenv(LOAD_PLUGINS_ENV, raising=False)
    reset_registry()
    yield plugin_site
    reset_registry()
    importlib.invalidate_caches()


@pytest.fixture
def throwaway_venv(tmp_path: Path) -> Path:
    """A new virtual environment that also sees this one's packages; returns its python.

    Made ``--without-pip``; a ``.pth`` file adds this environment's site-packages (with their
    own ``.pth`` files, so the editable gameadapt too), so nothing is installed twice, while
    ``python -m pip install`` installs into the new environment only.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    lines = [f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()]
    Path(purelib, "_gameadapt_tests_parent.pth").write_text("".join(lines), encoding="utf-8")
    return python


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No third-party plugins (``GAMEADAPT_LOAD_PLUGINS=""``); a fresh registry around the test."""
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "")
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def example_package() -> Path:
    """The example plugin's source folder (``examples/gameadapt-example``)."""
    return EXAMPLE_PACKAGE


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the example plugin's source importable for this test (no pip involved)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_PACKAGE))
    return EXAMPLE_PACKAGE


def make_toy_game(game_id: str) -> GameSpec:
    """A minimal gymnasium-api game spec (the registry never steps it)."""
    return GameSpec(
        id=game_id, description=f"toy game {game_id}", api="gymnasium",
        observation_space=gymnasium.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32),
        action_space=gymnasium.spaces.Discrete(2), variant_space=VariantSpace([]),
        make_env=lambda variant=None, render_mode=None: gymnasium.make("CartPole-v1"),
    )


@pytest.fixture
def toy_game() -> Callable[[str], GameSpec]:
    """``toy_game(id)`` makes a minimal game spec."""
    return make_toy_game


def with_pythonpath(*entries: Path) -> dict[str, str]:
    """A copy of ``os.environ`` with ``entries`` put in front of ``PYTHONPATH``."""
    paths = [str(entry) for entry in entries]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


@pytest.fixture
def subprocess_env() -> Callable[..., dict[str, str]]:
    """``subprocess_env(path, ...)``: an environment for a child Python that can import them."""
    return with_pythonpath


@pytest.fixture
def fake_plugin(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Make an in-process plugin module; returns its module name for ``Registry.load``.

    ``fake_plugin("name", register_games=fn)`` puts a module ``gameadapt_fake_name`` with
    ``fn`` marked as the ``register_games`` hook (pluggy matches the attribute name) into
    ``sys.modules`` for this test.
    """

    def make(name: str, **hooks: Callable[..., Any]) -> str:
        module = types.ModuleType(f"gameadapt_fake_{name}")
        for hook_name, function in hooks.items():
            setattr(module, hook_name, gameadapt.hookimpl(function))
        monkeypatch.setitem(sys.modules, module.__name__, module)
        return module.__name__

    return make
