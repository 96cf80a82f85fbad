"""gameadapt: meta-train game agents that adapt to unseen levels and rules, ship them as ONNX.

Importing this package is cheap and never imports torch, so game views and the ONNX player
stay usable without it. Plugins use :data:`hookimpl` to implement the hooks in
:mod:`gameadapt.host.hookspecs`.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("gameadapt")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

PROJECT_NAME = "gameadapt"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
