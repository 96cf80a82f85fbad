"""``gameadapt playground``: write (and optionally serve) the browser playground of an export.

Importing this module is cheap: onnxruntime loads inside the command.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..host.registry import get_registry
from .options import InputPath, OutputPath


@click.command("playground")
@click.argument("export_dir", metavar="EXPORT_DIR",
                type=InputPath(file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=OutputPath(folder=True),
              help="Folder to write the page to.")
@click.option("--ort-web", "ort_web", type=InputPath(file_okay=False, path_type=Path),
              help="onnxruntime-web's dist folder to copy the browser files from (default: "
                   "node_modules/onnxruntime-web/dist here, if present; else the page loads "
                   "them from jsDelivr).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--serve", is_flag=True, help="Then serve OUT on 127.0.0.1 until Ctrl-C.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port --serve listens on (0: any free one).")
def playground_command(export_dir: Path, out_dir: Path, ort_web: Path | None, force: bool,
                       serve: bool, port: int) -> None:
    """Write a static page that plays a gridnav EXPORT_DIR in the browser and lets you edit
    the level (walls, goal, controls, slip) to watch the agent adapt."""
    # onnxruntime loads here, when the command runs: gameadapt --help stays light
    from ..ship.playground import ORT_WEB_CDN, make_server, write_playground

    written = write_playground(export_dir, out_dir, get_registry().game("gridnav"),
                               ort_web=ort_web, force=force)
    click.echo(f"wrote the playground of {export_dir} ({written.family} family, "
               f"{written.levels} levels) to {out_dir}")
    if written.ort_web is None:
        click.echo(f"onnxruntime-web not found (no --ort-web, no node_modules/onnxruntime-web): "
                   f"the page loads it from {ORT_WEB_CDN}")
    if not serve:
        click.echo(f"serve it (it does not run from file://): gameadapt playground "
                   f"{export_dir} -o {out_dir} --force --serve, or python -m http.server "
                   f"-d {out_dir}")
        return
    server = make_server(out_dir, port)
    click.echo(f"serving on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
