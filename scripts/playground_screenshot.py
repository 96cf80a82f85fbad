"""The README's playground picture: a trained run played in headless Chromium, the level
edited after a few episodes, the agent adapting with adapter.onnx.

    python scripts/playground_screenshot.py RUN OUT.png [BEFORE AFTER CONTROLS SLIP]

RUN is a gridnav gradient-family run (the main job's ``runs/main-gridnav-*-maml``); it is
exported ``--with-adapter --target web`` and written as a playground into a temporary
folder, served on 127.0.0.1 and driven by ``tests/playground_driver.mjs`` (the end-to-end
test's driver: BEFORE episodes, a wall clicked, CONTROLS picked, SLIP set, AFTER episodes;
default 6 14 mirrored 0.1). Prints every episode's return. Needs ``scripts/js_setup.sh``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
from jsenv import chromium, require_js  # noqa: E402
from test_playground_browser import DRIVER, ORT_WEB, make_server, wall_cell  # noqa: E402


def main(run: str, out: str, before: str = "6", after: str = "14", controls: str = "mirrored",
         slip: str = "0.1") -> None:
    gameadapt = [sys.executable, "-m", "gameadapt"]
    with tempfile.TemporaryDirectory() as scratch:
        here = Path(scratch)
        subprocess.run([*gameadapt, "export", run, "-o", str(here / "export"), "--with-adapter",
                        "--target", "web"], check=True, capture_output=True)
        subprocess.run([*gameadapt, "playground", str(here / "export"), "-o", str(here / "page"),
                        "--ort-web", str(ORT_WEB)], check=True, capture_output=True)
        config = json.loads((here / "page" / "config.json").read_text(encoding="utf-8"))
        server = make_server(here / "page")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        plan = {"url": f"http://127.0.0.1:{server.server_address[1]}/", "chromium": chromium(),
                "user_data_dir": str(here / "profile"), "out": str(here / "log.json"),
                "screenshot": str(here / "shot.png"), "before": int(before),
                "after": int(after), "wall": wall_cell(config["levels"][0]["layout"]),
                "controls": controls, "slip": slip}
        (here / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        node = require_js("playwright-core", "onnxruntime-web", browser=True)
        subprocess.run([node, str(DRIVER), str(here / "plan.json")], check=True, timeout=600,
                       cwd=DRIVER.parent)
        log = json.loads((here / "log.json").read_text(encoding="utf-8"))["log"]
        print("returns:", [round(sum(s["reward"] for s in e["steps"]), 2)
                           for e in log["episodes"] if not e["cut"]])
        shutil.copyfile(here / "shot.png", out)
        server.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
