"""``gameadapt playground``: a static folder that plays a gridnav export in the browser.

The folder holds the page (``index.html`` and its ES modules, copied from the package's
``web/`` data), the export's files (``policy/``, checked with the reference loader: format
and SHA-256), ``config.json`` (the manifest, the export's level and a few held-out levels as
layouts, since the page does not port the level generator) and, when found, onnxruntime-web's
browser files (``ort/``); without them the page loads onnxruntime-web from jsDelivr. The
page runs the game in JavaScript (``web/gridnav.mjs``, the step rule of
``games/gridnav/dynamics.py``) and the export with onnxruntime-web, the way ``gameadapt
play`` does (``--adapt-online`` for an export with an adapter). The folder is written
through a staging folder beside it and swapped in whole, under the output's lock.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from gameadapt.games.gridnav.levels import layout_of, level_of  # the playground's one game

from ..errors import GameadaptError
from ..files import fsync_tree, replace_folder, staging_folder_beside
from ..game import GameSpec
from ..locks import lock_output
from ..variants import Variant
from .onnxpolicy import MANIFEST, OnnxPolicy, PolicyLoadError

GAME = "gridnav"
PLAYGROUND_FORMAT = "gameadapt-playground/1"
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
DEFAULT_ORT_WEB = Path("node_modules") / "onnxruntime-web" / "dist"
PAGE_FILES = ("index.html", "style.css", "playground.mjs", "agent.mjs", "gridnav.mjs",
              "plot.mjs")
POLICY_FOLDER, ORT_FOLDER, CONFIG_FILE = "policy", "ort", "config.json"
HELD_OUT_LEVELS = 5
LEVEL_SEED = 0  # the held-out levels: VARIANT_SPACE.sample("test", HELD_OUT_LEVELS, seed=0)
MIME_TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
              ".json": "application/json", ".onnx": "application/octet-stream",
              ".bin": "application/octet-stream"}


@dataclass(frozen=True)
class Playground:
    """A written playground: its folder, where onnxruntime-web comes from, what it plays."""

    folder: Path
    ort_web: Path | None  # the folder its browser files were copied from; None: jsDelivr
    family: str
    levels: int


def family_of(policy: OnnxPolicy) -> str:
    """``"adapter"``, ``"recurrent"``, ``"context"`` or ``"policy"`` (no adaptation)."""
    if policy.recurrent:
        return "recurrent"
    if policy.context:
        return "context"
    return "adapter" if policy.has_adapter else "policy"


def find_ort_web(given: Path | None) -> Path | None:
    """The onnxruntime-web ``dist`` folder to copy: ``given`` (which must hold the browser
    files), else ``node_modules/onnxruntime-web/dist`` here if it holds them, else None."""
    folder = DEFAULT_ORT_WEB if given is None else Path(given)
    missing = [name for name in ORT_WEB_FILES if not (folder / name).is_file()]
    if not missing:
        return folder
    if given is not None:
        raise GameadaptError(f"--ort-web {given} lacks {missing[0]} (give onnxruntime-web "
                             f"{ORT_WEB_VERSION}'s dist folder)")
    return None


def load_export(export_dir: Path) -> OnnxPolicy:
    """The export, checked by the reference loader; a one-line error unless it is gridnav's."""
    try:
        policy = OnnxPolicy.load(export_dir)
    except PolicyLoadError as exc:
        raise GameadaptError(str(exc)) from None
    if policy.game != GAME:
        raise GameadaptError(f"{export_dir} is a policy for game {policy.game!r}; the "
                             f"playground plays {GAME!r} exports only")
    return policy


def page_levels(spec: GameSpec, variant: Variant) -> list[dict[str, Any]]:
    """The levels the page offers: the export's own, then held-out ones, each as a layout
    with its rules."""
    space = spec.variant_space
    chosen = [("the export's level", space.validate(variant))]
    chosen += [(f"held-out level {i + 1}", v) for i, v in
               enumerate(space.sample("test", HELD_OUT_LEVELS, seed=LEVEL_SEED))]
    return [{"name": name, "layout": layout_of(level_of(v["level"])), "rules": v["rules"],
             "variant": v} for name, v in chosen]


def playground_config(policy: OnnxPolicy, spec: GameSpec, ort_module: str) -> dict[str, Any]:
    """What ``config.json`` holds for the page."""
    return {"format": PLAYGROUND_FORMAT, "game": GAME, "family": family_of(policy),
            "policy_folder": POLICY_FOLDER, "manifest": policy.manifest,
            "levels": page_levels(spec, policy.variant), "seed": 0,
            "ort": {"module": ort_module, "version": ORT_WEB_VERSION}}


def write_playground(export_dir: Path, out_dir: Path, spec: GameSpec, *,
                     ort_web: Path | None = None, force: bool = False) -> Playground:
    """Write the playground of ``export_dir`` to ``out_dir`` (replaced whole with ``force``)."""
    policy = load_export(export_dir)
    source = find_ort_web(ort_web)
    with lock_output(out_dir, "gameadapt playground"):
        if out_dir.exists() and not force:
            raise GameadaptError(f"{out_dir} already exists; use --force to replace it")
        if out_dir.exists() and not out_dir.is_dir():
            raise GameadaptError(f"{out_dir} exists and is not a folder")
        staging = staging_folder_beside(out_dir, "playground")
        try:
            config = _fill(staging, policy, spec, source)
            fsync_tree(staging)
            replace_folder(staging, out_dir, fault="playground")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Playground(out_dir, source, config["family"], len(config["levels"]))


def _fill(folder: Path, policy: OnnxPolicy, spec: GameSpec, ort_web: Path | None
          ) -> dict[str, Any]:
    """Write the page, the export's files, onnxruntime-web and ``config.json`` into
    ``folder``; return the config."""
    web = resources.files(__package__ or "gameadapt.ship").joinpath("web")
    for name in PAGE_FILES:
        (folder / name).write_bytes(web.joinpath(name).read_bytes())
    (folder / POLICY_FOLDER).mkdir()
    names = [MANIFEST, *(str(entry.get("path", name))
                         for name, entry in policy.manifest["files"].items())]
    for name in names:
        target = folder / POLICY_FOLDER / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(policy.folder / name, target)
    module = ORT_WEB_CDN + ORT_WEB_FILES[0]
    if ort_web is not None:
        (folder / ORT_FOLDER).mkdir()
        for name in ORT_WEB_FILES:
            shutil.copyfile(ort_web / name, folder / ORT_FOLDER / name)
        module = f"./{ORT_FOLDER}/{ORT_WEB_FILES[0]}"
    config = playground_config(policy, spec, module)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n",
                                      encoding="utf-8")
    return config


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the MIME types the page needs (``.mjs``, ``.wasm``), no log lines."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Requests are not logged."""


class PlaygroundServer(http.server.ThreadingHTTPServer):
    """The threaded server; a client that drops a connection midway gets no traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(folder: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server of ``folder`` on 127.0.0.1 (``port`` 0: a free one); call
    ``serve_forever``."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    try:
        return PlaygroundServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise GameadaptError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None
