"""``gameadapt playground``: the folder it writes (page, export, config, onnxruntime-web) and
what it refuses, each with one ``Error:`` line and nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from gameadapt.cli import cli
from gameadapt.games.gridnav import VARIANT_SPACE
from gameadapt.games.gridnav.levels import layout_of, level_of, parse_layout
from gameadapt.ship.playground import (
    HELD_OUT_LEVELS,
    ORT_WEB_CDN,
    ORT_WEB_FILES,
    PAGE_FILES,
)

from jsenv import NODE_MODULES

TINY = ["--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu"]
ORT_WEB = NODE_MODULES / "onnxruntime-web" / "dist"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error_line(result: Result, fragment: str) -> None:
    assert result.exit_code != 0, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert fragment in result.output, result.output


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gridnav maml export with an adapter (read only)."""
    here = tmp_path_factory.mktemp("playground_export")
    assert invoke("train", "gridnav", *TINY, "--run-dir", here / "run").exit_code == 0
    result = invoke("export", here / "run", "-o", here / "export", "--with-adapter")
    assert result.exit_code == 0, result.output
    return here / "export"


@pytest.mark.slow
def test_the_folder_holds_the_page_the_export_the_levels_and_ort_web(export: Path,
                                                                      tmp_path: Path) -> None:
    if not (ORT_WEB / ORT_WEB_FILES[0]).is_file():
        pytest.skip("onnxruntime-web is not installed (bash scripts/js_setup.sh)")
    out = tmp_path / "page"
    result = invoke("playground", export, "-o", out, "--ort-web", ORT_WEB)
    assert result.exit_code == 0, result.output
    assert "adapter family, 6 levels" in result.output
    for name in PAGE_FILES:
        assert (out / name).is_file(), name
    for name in ORT_WEB_FILES:
        assert (out / "ort" / name).read_bytes() == (ORT_WEB / name).read_bytes()
    manifest = json.loads((export / "policy.json").read_text(encoding="utf-8"))
    for name in ["policy.json", *manifest["files"]]:
        assert (out / "policy" / name).read_bytes() == (export / name).read_bytes(), name
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["family"] == "adapter" and config["manifest"] == manifest
    assert config["ort"] == {"module": "./ort/ort.wasm.min.mjs", "version": "1.30.0"}
    levels = config["levels"]
    assert len(levels) == 1 + HELD_OUT_LEVELS
    own = VARIANT_SPACE.validate(manifest["variant"])
    assert levels[0]["layout"] == layout_of(level_of(own["level"]))
    assert levels[0]["rules"] == own["rules"]
    held_out = VARIANT_SPACE.sample("test", HELD_OUT_LEVELS, seed=0)
    assert [level["variant"] for level in levels[1:]] == held_out
    for level in levels:
        parse_layout(level["layout"])  # every one a valid layout
    assert len({level["layout"] for level in levels}) == len(levels)
    again = invoke("playground", export, "-o", out, "--ort-web", ORT_WEB)
    assert_one_error_line(again, "already exists; use --force")
    (out / "stale.txt").write_text("old", encoding="utf-8")
    forced = invoke("playground", export, "-o", out, "--ort-web", ORT_WEB, "--force")
    assert forced.exit_code == 0, forced.output
    assert not (out / "stale.txt").exists() and (out / "index.html").is_file()
    assert not list(tmp_path.glob(".page.playground-*"))


@pytest.mark.slow
def test_without_ort_web_the_page_loads_it_from_jsdelivr(export: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no node_modules here
    result = invoke("playground", export, "-o", "page")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "jsDelivr" in line
             or ORT_WEB_CDN in line]
    assert len(lines) == 1 and ORT_WEB_CDN in lines[0]
    config = json.loads((tmp_path / "page" / "config.json").read_text(encoding="utf-8"))
    assert config["ort"]["module"] == ORT_WEB_CDN + "ort.wasm.min.mjs"
    assert "onnxruntime-web@1.30.0" in config["ort"]["module"]
    assert not (tmp_path / "page" / "ort").exists()


@pytest.mark.slow
def test_a_non_gridnav_or_corrupt_export_is_refused(export: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(export, other)
    manifest = json.loads((other / "policy.json").read_text(encoding="utf-8"))
    (other / "policy.json").write_text(json.dumps({**manifest, "game": "pointnav"}),
                                       encoding="utf-8")
    assert_one_error_line(invoke("playground", other, "-o", tmp_path / "p1"),
                          "is a policy for game 'pointnav'; the playground plays 'gridnav'")
    corrupt = tmp_path / "corrupt"
    shutil.copytree(export, corrupt)
    with open(corrupt / "adapter.onnx", "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert_one_error_line(invoke("playground", corrupt, "-o", tmp_path / "p2"),
                          "does not match its sha256")
    assert_one_error_line(invoke("playground", export, "-o", tmp_path / "p3", "--ort-web",
                                 tmp_path), "lacks ort.wasm.min.mjs")
    assert not any((tmp_path / name).exists() for name in ("p1", "p2", "p3"))


def test_a_missing_export_is_one_error_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_error_line(invoke("playground", empty, "-o", tmp_path / "page"),
                          "has no policy.json")
    assert_one_error_line(invoke("playground", tmp_path / "nowhere", "-o", tmp_path / "page"),
                          "nowhere")
    assert not (tmp_path / "page").exists()


@pytest.mark.slow
def test_a_non_editable_install_ships_the_page(tmp_path: Path) -> None:
    from test_packaging import source_copy

    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q",
         "--target", str(target), str(source_copy(tmp_path / "src"))],
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    web = target / "gameadapt" / "ship" / "web"
    assert sorted(p.name for p in web.iterdir()) == sorted(PAGE_FILES)
