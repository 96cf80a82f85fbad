"""Replacement never loses the last good copy; killed work leaves no half files (issue 15, 2-5).

Kills are real: a ``gameadapt`` subprocess with ``GAMEADAPT_FAULT=STAGE`` SIGKILLs itself at
that stage (:func:`gameadapt.files.fault_point`); ``GAMEADAPT_NO_RENAME_EXCHANGE=1`` forces
:func:`gameadapt.files.replace_folder`'s fallback (rename aside, rename in).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from gameadapt import files
from gameadapt.cli import cli
from gameadapt.errors import GameadaptError
from gameadapt.ship.play import load_policy
from gameadapt.train import trainer

TINY = ["--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu"]
TARGET = ["-v", "level.seed=12345", "-v", "controls=rotated_270"]
FOREIGN = {"policy.onnx.meta": "guid: 1", "Assets/notes.txt": "keep me"}


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def killed_at(stage: str, *args: Any, fallback: bool = False) -> None:
    """Run ``gameadapt ARGS`` in a real process that SIGKILLs itself at ``stage``."""
    env = dict(os.environ, GAMEADAPT_TORCH_THREADS="1", GAMEADAPT_FAULT=stage)
    if fallback:
        env[files.NO_EXCHANGE_ENV] = "1"
    completed = subprocess.run([sys.executable, "-m", "gameadapt", *map(str, args)], env=env,
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == -signal.SIGKILL, (stage, completed.stderr)


def one_error_line(result: Any) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def iterations(run: Path) -> list[int]:
    return [json.loads(line)["iteration"]
            for line in (run / "metrics.jsonl").read_text("utf-8-sig").splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("replace") / "run"
    result = invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", folder)
    assert result.exit_code == 0, result.output
    return folder


# -- replace_folder --------------------------------------------------------------------------------
@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "fallback"])
def test_replace_folder_swaps_in_the_new_copy_and_removes_the_old(
        tmp_path: Path, fallback: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if fallback:
        monkeypatch.setenv(files.NO_EXCHANGE_ENV, "1")
    target, new = tmp_path / "out", tmp_path / ".out.new"
    target.mkdir()
    (target / "a").write_text("old")
    new.mkdir()
    (new / "a").write_text("new")
    files.replace_folder(new, target)
    assert (target / "a").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    fresh = tmp_path / ".fresh.new"
    fresh.mkdir()
    files.replace_folder(fresh, tmp_path / "fresh")  # no old copy: renamed into place
    assert (tmp_path / "fresh").is_dir() and not fresh.exists()


def test_restore_aside_puts_the_old_copy_back_only_when_the_target_is_missing(
        tmp_path: Path) -> None:
    target = tmp_path / "out"
    aside = files.aside_path(target)
    assert aside == tmp_path / ".out.aside"
    aside.mkdir()
    (aside / "a").write_text("old")
    assert files.restore_aside(target) and (target / "a").read_text() == "old"
    aside.mkdir()
    assert not files.restore_aside(target) and aside.exists()
    files.remove_aside(target)  # a leftover beside a present target is removed
    assert not aside.exists() and (target / "a").read_text() == "old"


# -- export --force killed at every stage ----------------------------------------------------------
def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "policy.json").read_text())


def assert_complete_export(folder: Path, action: str) -> None:
    """``folder`` holds a whole export (of ``action``) that loads and matches its sha256s."""
    policy = load_policy(folder)  # restores an aside copy first
    manifest = policy.manifest
    assert manifest["action_mode"] == action
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"]
    for name, text in FOREIGN.items():
        assert (folder / name).read_text() == text


def debris(out: Path) -> list[str]:
    beside = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    inside = [p.name for p in out.iterdir() if p.name.startswith(".export-")]
    return sorted(beside + inside)


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "fallback"])
def test_a_killed_export_force_leaves_the_old_export_or_the_new_one(
        run: Path, tmp_path: Path, fallback: bool) -> None:
    out = tmp_path / "export"
    result = invoke("export", run, "-o", out, "--action", "greedy")
    assert result.exit_code == 0, result.output
    for name, text in FOREIGN.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    (out / ".export-oldlayout").mkdir()  # what a killed export of the previous layout left
    stages = ["export:staged", "export:verified", *(["export:aside"] if fallback else [])]
    for stage in stages:
        killed_at(stage, "export", run, "-o", out, "--force", "--action", "sampled",
                  fallback=fallback)
        assert_complete_export(out, "greedy")
    assert any(name.startswith(".export.export-") for name in debris(out))
    killed_at("export:swapped", "export", run, "-o", out, "--force", "--action", "sampled",
              fallback=fallback)
    assert_complete_export(out, "sampled")
    result = invoke("export", run, "-o", out, "--force", "--action", "greedy")
    assert result.exit_code == 0, result.output
    assert_complete_export(out, "greedy")
    assert debris(out) == []


# -- adapt -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_adapt_leaves_no_output_and_the_next_one_works(run: Path, tmp_path: Path
                                                                ) -> None:
    out = tmp_path / "adapted"
    args = ["adapt", run, *TARGET, "--episodes", "2", "--eval-episodes", "2", "-o", out]
    killed_at("adapt:staged", *args)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".adapted.adapt-")]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["adapted.json", "adapted.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted"]


# -- metrics, checkpoints and resume ---------------------------------------------------------------
def trained(tmp_path: Path, count: int = 2) -> Path:
    folder = tmp_path / "run"
    result = invoke("train", "gridnav", "--iterations", count, *TINY, "--checkpoint-every", 1,
                    "--run-dir", folder)
    assert result.exit_code == 0, result.output
    return folder


def test_a_torn_last_metrics_line_is_dropped_on_resume_with_a_warning(tmp_path: Path) -> None:
    folder = trained(tmp_path)
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"iteration": 2, "pre_ret')
    result = invoke("train", "--resume", folder, "--iterations", 3)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "torn last line" in warnings[0], result.output
    assert iterations(folder) == [0, 1, 2]


@pytest.mark.parametrize("bad", ['not json\n', '{"iteration": -1}\n', '[1, 2]\n',
                                 '{"iteration": "0"}\n', '{"iteration": true}\n'])
def test_a_bad_metrics_line_before_the_last_is_one_line_and_changes_nothing(
        tmp_path: Path, bad: str) -> None:
    folder = trained(tmp_path)
    lines = (folder / "metrics.jsonl").read_text().splitlines(keepends=True)
    (folder / "metrics.jsonl").write_text(bad + "".join(lines))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    line = one_error_line(invoke("train", "--resume", folder, "--iterations", 3))
    assert "metrics.jsonl line 1" in line
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_metrics_are_read_as_utf8_with_a_bom(tmp_path: Path) -> None:
    folder = trained(tmp_path)
    metrics = folder / "metrics.jsonl"
    metrics.write_bytes(b"\xef\xbb\xbf" + metrics.read_bytes())
    result = invoke("train", "--resume", folder, "--iterations", 3)
    assert result.exit_code == 0, result.output
    assert iterations(folder) == [0, 1, 2]
    (folder / "metrics.jsonl").write_bytes("é".encode("latin-1") + b"\n")
    assert "not UTF-8" in one_error_line(invoke("train", "--resume", folder, "--iterations", 4))


@pytest.mark.slow
def test_a_kill_inside_a_checkpoint_write_leaves_temp_debris_the_next_run_removes(
        tmp_path: Path) -> None:
    folder = trained(tmp_path, 1)
    checkpoint = (folder / "checkpoint.pt").read_bytes()
    killed_at("write:checkpoint.pt", "train", "--resume", folder, "--iterations", 2)
    assert (folder / "checkpoint.pt").read_bytes() == checkpoint
    assert list(folder.glob(".checkpoint.pt.*.tmp"))
    (folder / ".config.json.stale.tmp").write_text("{")
    result = invoke("train", "--resume", folder, "--iterations", 2)
    assert result.exit_code == 0, result.output
    assert not list(folder.glob(".*.tmp")) and not (folder / ".lock").exists()
    assert iterations(folder) == [0, 1]
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["iteration"] == 2


def test_resume_below_the_completed_iterations_is_refused_without_touching_config(
        tmp_path: Path) -> None:
    folder = trained(tmp_path, 3)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    line = one_error_line(invoke("train", "--resume", folder, "--iterations", 2))
    assert "--iterations 2 is below the 3 iterations" in line
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("present", ["metrics.jsonl", "tb", "checkpoint.pt"])
def test_a_new_run_refuses_a_folder_holding_any_run_file(tmp_path: Path, present: str) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    if present == "tb":
        (folder / present).mkdir()
    else:
        (folder / present).write_text('{"iteration": 0}\n')
    line = one_error_line(invoke("train", "gridnav", "--iterations", 1, *TINY,
                                 "--run-dir", folder))
    assert f"already holds a run ({present})" in line
    assert sorted(p.name for p in folder.iterdir()) == [present]
    if present != "tb":
        assert (folder / present).read_text() == '{"iteration": 0}\n'


def test_a_diverged_iteration_writes_no_row_and_keeps_the_last_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = trained(tmp_path, 1)
    checkpoint = (folder / "checkpoint.pt").read_bytes()
    real = trainer._train_iteration

    def diverging(session: Any) -> dict[str, Any]:
        row = real(session)
        if session.iteration == 2:
            with torch.no_grad():
                next(iter(session.policy.parameters())).fill_(float("nan"))
        return row

    monkeypatch.setattr(trainer, "_train_iteration", diverging)
    line = one_error_line(invoke("train", "--resume", folder, "--iterations", 4))
    assert line.startswith("Error: training diverged at iteration 2 (non-finite weights")
    assert line.endswith("the last checkpoint (iteration 2) is kept")
    assert iterations(folder) == [0, 1]
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert saved["iteration"] == 2 and (folder / "checkpoint.pt").read_bytes() != checkpoint
    assert all(torch.isfinite(value).all() for value in saved["policy"].values())


def test_created_folders_are_removed_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(GameadaptError):
        with files.created_folders(tmp_path / "a" / "b"):
            raise GameadaptError("failed")
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(GameadaptError, match="cannot create the folder"):
        with files.created_folders(tmp_path / "file" / "x"):
            pass
