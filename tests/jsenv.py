"""Where the JavaScript tests find Node.js, the npm packages and Chromium.

``scripts/js_setup.sh`` (run by ``scripts/test.sh``, so by CI) installs them: the packages of
``package.json`` into ``node_modules/`` with ``npm ci --ignore-scripts`` and Debian's
Chromium. A test that needs one calls :func:`require_js`: it is skipped where they are
missing, except under ``CI=true``, where a missing one fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"


def _missing(what: str) -> None:
    message = f"{what} is missing: run bash scripts/js_setup.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require_js(*packages: str, browser: bool = False) -> str:
    """The path of ``node``, after checking that ``packages`` (and Chromium) are installed."""
    node = shutil.which("node")
    if node is None:
        _missing("node")
    for package in packages:
        if not (NODE_MODULES / package / "package.json").is_file():
            _missing(f"the npm package {package}")
    if browser and chromium() is None:
        _missing("chromium")
    return str(node)


def chromium() -> str | None:
    """Debian's Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def link_node_modules(folder: Path) -> None:
    """Make ``folder``'s scripts find the npm packages (ES modules ignore NODE_PATH)."""
    link = folder / "node_modules"
    if not link.exists():
        link.symlink_to(NODE_MODULES, target_is_directory=True)
