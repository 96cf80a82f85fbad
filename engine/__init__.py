"""gameadapt: meta-train game agents that adapt to unseen levels and rules, ship them as ONNX.

Importing this package is cheap and imports nothing but the standard library: pluggy loads
when a plugin first asks for :data:`hookimpl` (the marker of the hooks in
:mod:`gameadapt.host.hookspecs`), so the reference loader :mod:`gameadapt.ship.onnxpolicy`
works in an environment with only numpy and onnxruntime (``pip install --no-deps
gameadapt``), and game views and the ONNX player stay usable without torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    hookimpl: pluggy.HookimplMarker

try:
    __version__ = version("gameadapt")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

PROJECT_NAME = "gameadapt"

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    """``hookimpl``, made on first use (PEP 562), so that importing gameadapt needs no pluggy."""
    if name != "hookimpl":
        raise AttributeError(f"module 'gameadapt' has no attribute {name!r}")
    import pluggy  # deferred: the torch-free loader must import without pluggy installed

    marker = pluggy.HookimplMarker(PROJECT_NAME)
    globals()["hookimpl"] = marker
    return marker
