"""Every file the engine reads is checked before use: one ``Error:`` line, nothing changed.

Text files (config TOML, variant files, ``config.json``, ``policy.json``) must be UTF-8 (a
BOM accepted), bounded in size and nesting, and typed field by field; checkpoints carry a
checksum, a schema and finite tensors; a run is rebuilt from its recorded
``algorithm_config``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from gameadapt import textfiles
from gameadapt.cli import cli
from gameadapt.errors import GameadaptError
from gameadapt.host.registry import get_registry
from gameadapt.train.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, content_digest,
                                        load_checkpoint, save_checkpoint)
from gameadapt.train.runs import RunDir
from gameadapt.train.session import load_config_file, load_session, run_train_config

TINY = ("--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu")
DEEP = 10_000
BUILTIN_ALGORITHMS = ("maml", "fomaml", "reptile", "rl2", "context", "pretrain", "scratch")


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result: Any, *fragments: str) -> str:
    """A non-zero exit whose output ends with its only ``Error:`` line, holding ``fragments``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert result.output.strip().splitlines()[-1] == errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, byte for byte."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny gridnav maml run with a checkpoint after 2 iterations."""
    run = tmp_path_factory.mktemp("validation") / "run"
    result = invoke("train", "gridnav", "--iterations", "2", *TINY, "--run-dir", run)
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


def edit_config(run: Path, change: Any) -> None:
    path = run / "config.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def rewrite_checkpoint(run: Path, change: Any, *, checksum: bool = True) -> None:
    """Change the checkpoint's payload (``checksum``: with a matching checksum, as if written
    so, to reach the schema checks behind it)."""
    path = run / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    change(payload)
    if checksum:
        payload["checksum"] = content_digest(payload)
    torch.save(payload, path)


# -- text files: encodings, size, nesting -------------------------------------------------
@pytest.mark.parametrize("data", ['game = "gridnav"\n'.encode("utf-16"),
                                  'game = "gridnav"\n'.encode("utf-16-le"),
                                  'game = "gridnav"  # caf\xe9\n'.encode("latin-1")])
def test_a_config_toml_in_another_encoding_is_one_line(data: bytes, tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_bytes(data)
    result = invoke("train", "--config", config, "--run-dir", tmp_path / "run")
    assert_one_line_error(result, f"config file {config} is not UTF-8 text (save it as UTF-8)")
    assert not (tmp_path / "run").exists()


def test_a_bom_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_bytes(b'\xef\xbb\xbfgame = "gridnav"\nseed = 3\n')
    assert load_config_file(config) == {"game": "gridnav", "seed": 3}
    variant = tmp_path / "v.json"
    variant.write_bytes(b'\xef\xbb\xbf{"level": {"seed": 4}}')
    assert get_registry().game("gridnav").variant_space.load_file(variant)["level"]["seed"] == 4


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_variant_file_in_another_encoding_is_one_line(suffix: str, tmp_path: Path) -> None:
    variant = tmp_path / f"v{suffix}"
    text = '{"level": {"seed": 4}}' if suffix == ".json" else "[level]\nseed = 4\n"
    variant.write_bytes(text.encode("utf-16"))
    result = invoke("games", "play", "gridnav", "--variant-file", variant)
    assert_one_line_error(result, f"variant file {variant} is not UTF-8 text")


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "must hold a table/object of parts, got list"),
    ('"level"', "must hold a table/object of parts, got str"),
    ("[" * DEEP + "]" * DEEP, "is nested deeper than the limit of 32 levels"),
    ('{"level": {"seed": NaN}}', "holds the non-finite number NaN"),
])
def test_a_bad_variant_file_is_one_line(text: str, message: str, tmp_path: Path) -> None:
    variant = tmp_path / "v.json"
    variant.write_text(text)
    assert_one_line_error(invoke("games", "play", "gridnav", "--variant-file", variant),
                          f"variant file {variant}", message)


def test_deep_nesting_is_refused_in_json_and_toml(tmp_path: Path) -> None:
    deep_json = tmp_path / "deep.json"
    deep_json.write_text("[" * DEEP + "]" * DEEP)
    with pytest.raises(GameadaptError, match="nested deeper than the limit of 32 levels"):
        textfiles.load_json(deep_json, "file")
    just_fine = "[" * 32 + "]" * 32
    assert textfiles.parse_json(just_fine, "x") is not None
    with pytest.raises(GameadaptError, match="nested deeper"):
        textfiles.parse_json("[" * 33 + "]" * 33, "x")
    deep_toml = tmp_path / "deep.toml"
    deep_toml.write_text("a = " + "[" * DEEP + "]" * DEEP + "\n")
    result = invoke("train", "--config", deep_toml, "--run-dir", tmp_path / "run")
    assert_one_line_error(result, f"config file {deep_toml} is nested deeper than the limit")


def test_non_finite_json_numbers_only_where_allowed() -> None:
    for text in ('{"a": NaN}', '{"a": -Infinity}', '{"a": 1e999}'):
        with pytest.raises(GameadaptError, match="non-finite number"):
            textfiles.parse_json(text, "x")
    assert textfiles.parse_json('{"a": Infinity}', "x", allow_nonfinite=True)["a"] == float("inf")


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textfiles, "MAX_TEXT_BYTES", 10)
    big = tmp_path / "big.json"
    big.write_text('{"a": "01234567890"}')
    with pytest.raises(GameadaptError, match="is larger than the limit of 10 bytes"):
        textfiles.load_json(big, "file")


# -- config TOML: types ---------------------------------------------------------------------
@pytest.mark.parametrize(("line", "message"), [
    ("options = 5", "invalid options 5: must be a table of key = value"),
    ('seed = "abc"', "invalid seed 'abc': must be an integer from 0 to 4294967295"),
    ("seed = 1.5", "invalid seed 1.5"),
    ("seed = -1", "invalid seed -1"),
    (f"seed = {2**32}", f"invalid seed {2**32}"),
    ("meta_batch = 0", "invalid meta_batch 0: must be an integer >= 1"),
    ('device = "tpu"', "invalid device 'tpu': use auto, cpu, cuda or cuda:N"),
    ('algorithm = ""', "invalid algorithm '': must be a non-empty string"),
    ('share_policy = "yes"', "invalid share_policy 'yes': must be true or false"),
])
def test_wrong_types_in_a_config_toml_name_the_file_and_key(line: str, message: str,
                                                            tmp_path: Path) -> None:
    config = tmp_path / "x.toml"
    config.write_text(f'game = "gridnav"\n{line}\n')
    result = invoke("train", "--config", config, "--run-dir", tmp_path / "run")
    assert_one_line_error(result, f"config file {config}: {message}")
    assert not (tmp_path / "run").exists()


# -- config.json: schema and consistency ----------------------------------------------------
def _drop_train(data: dict[str, Any]) -> None:
    del data["train"]


def _string_seed(data: dict[str, Any]) -> None:
    data["train"]["seed"] = "abc"


def _other_algorithm(data: dict[str, Any]) -> None:
    data["algorithm"] = "reptile"


def _options_number(data: dict[str, Any]) -> None:
    data["train"]["options"] = 5


def _list_config(data: dict[str, Any]) -> None:
    data["progress"] = [1]


CONFIG_DEFECTS = [
    (_drop_train, "train must be an object (the training config), got nothing"),
    (_string_seed, "seed 'abc'"),  # train.seed (evaluate's memory check: seed)
    (_other_algorithm, "algorithm 'reptile' differs from train.algorithm 'maml'"),
    (_options_number, "options 5"),
    (_list_config, "progress must be an object, got list"),
]
COMMANDS = {
    "resume": lambda run, tmp: ("train", "--resume", run, "--iterations", "3"),
    "evaluate": lambda run, tmp: ("evaluate", run, "--tasks", "2", "--episodes", "2",
                                  "--steps", "0,1", "--seeds", "0", "--baselines", ""),
    "export": lambda run, tmp: ("export", run, "-o", tmp / "export"),
    "adapt": lambda run, tmp: ("adapt", run, "-v", "level.seed=3", "--episodes", "2",
                               "--eval-episodes", "2", "-o", tmp / "adapted"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("defect", "message"), CONFIG_DEFECTS)
def test_a_bad_config_json_is_refused_and_left_as_it_was(command: str, defect: Any,
                                                         message: str, run_copy: Path,
                                                         tmp_path: Path) -> None:
    edit_config(run_copy, defect)
    before = snapshot(run_copy)
    result = invoke(*COMMANDS[command](run_copy, tmp_path))
    assert_one_line_error(result, message)
    assert snapshot(run_copy) == before
    assert not (tmp_path / "export").exists() and not (tmp_path / "adapted").exists()


def test_a_config_json_in_utf16_is_one_line(run_copy: Path) -> None:
    path = run_copy / "config.json"
    path.write_bytes(path.read_text().encode("utf-16"))
    assert_one_line_error(invoke("train", "--resume", run_copy),
                          f"run config {path} is not UTF-8 text")


def test_run_train_config_names_the_field(run_copy: Path) -> None:
    edit_config(run_copy, lambda data: data["train"].update(seed=1.5))
    with pytest.raises(GameadaptError, match=r"config\.json: invalid train\.seed 1\.5"):
        run_train_config(RunDir(run_copy))


# -- checkpoints: checksum, schema, finite values ---------------------------------------------
def test_checkpoints_are_written_in_format_2_with_a_checksum(trained: Path) -> None:
    payload = torch.load(trained / "checkpoint.pt", weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT == "gameadapt-checkpoint/2"
    assert payload["checksum"] == content_digest(payload)
    assert payload["checksum"].startswith("sha256:") and len(payload["checksum"]) == 71


def test_a_changed_tensor_fails_the_checksum(run_copy: Path) -> None:
    def nudge(payload: dict[str, Any]) -> None:
        payload["policy"]["head.bias"][0] += 1e-3
    rewrite_checkpoint(run_copy, nudge, checksum=False)
    before = snapshot(run_copy)
    result = invoke("train", "--resume", run_copy, "--iterations", "3")
    assert_one_line_error(result, "checkpoint.pt is corrupt (checksum mismatch)")
    assert snapshot(run_copy) == before


def test_a_flipped_byte_in_the_file_is_detected(run_copy: Path) -> None:
    path = run_copy / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    data = bytearray(path.read_bytes())
    tensor_bytes = payload["policy"]["body.0.weight"].numpy().tobytes()
    offset = bytes(data).index(tensor_bytes) + 100
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    line = assert_one_line_error(invoke("train", "--resume", run_copy, "--iterations", "3"),
                                 str(path))
    assert "checksum mismatch" in line or "is corrupt or not a gameadapt checkpoint" in line


def test_a_negative_iteration_is_refused_and_the_metrics_are_kept(run_copy: Path) -> None:
    rewrite_checkpoint(run_copy, lambda payload: payload.update(iteration=-5))
    metrics = (run_copy / "metrics.jsonl").read_bytes()
    before = snapshot(run_copy)
    result = invoke("train", "--resume", run_copy, "--iterations", "3")
    assert_one_line_error(result, "iteration must be an integer from 0 to 1000000000, got -5")
    assert (run_copy / "metrics.jsonl").read_bytes() == metrics
    assert snapshot(run_copy) == before


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(iteration=10**9 + 1), "iteration must be an integer"),
    (lambda p: p.update(iteration=True), "iteration must be an integer"),
    (lambda p: p.pop("engine_version"), "engine_version must be a string (missing)"),
    (lambda p: p.update(game=3), "game must be a string (got int)"),
    (lambda p: p["policy"].update({"head.bias": [1.0]}), "policy must map parameter names"),
    (lambda p: p["optimizer"].pop("state"), "optimizer must hold 'state'"),
])
def test_the_checkpoint_schema(change: Any, message: str, run_copy: Path) -> None:
    rewrite_checkpoint(run_copy, change)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(run_copy / "checkpoint.pt")


def _nan_weights(payload: dict[str, Any]) -> None:
    payload["policy"]["body.0.weight"][0, 0] = float("nan")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_nan_weights_are_refused(command: str, run_copy: Path, tmp_path: Path) -> None:
    rewrite_checkpoint(run_copy, _nan_weights)
    before = snapshot(run_copy)
    result = invoke(*COMMANDS[command](run_copy, tmp_path))
    assert_one_line_error(result, "tensor policy['body.0.weight'] holds NaN or infinite values")
    assert snapshot(run_copy) == before


def test_save_checkpoint_refuses_non_finite_tensors(tmp_path: Path) -> None:
    target = tmp_path / "c.pt"
    with pytest.raises(CheckpointError, match=r"tensor policy\['w'\] holds NaN"):
        save_checkpoint(target, {"policy": {"w": torch.tensor([1.0, float("inf")])}})
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_format_1_checkpoint_still_loads_and_resumes(run_copy: Path) -> None:
    def as_format_1(payload: dict[str, Any]) -> None:
        payload["format"] = "gameadapt-checkpoint/1"
        del payload["checksum"]
    rewrite_checkpoint(run_copy, as_format_1, checksum=False)
    assert load_checkpoint(run_copy / "checkpoint.pt")["iteration"] == 2
    result = invoke("train", "--resume", run_copy, "--iterations", "3")
    assert result.exit_code == 0, result.output
    payload = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT and payload["iteration"] == 3


# -- policy.json ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validation-export") / "export"
    result = invoke("export", trained, "-o", out, "--with-adapter")
    assert result.exit_code == 0, result.output
    return out


def _set(path: str, value: Any) -> Any:
    """A change of ``manifest[a][b]...`` (``path`` "a/b/0/c") to ``value``."""
    def change(manifest: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = manifest
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value
    return change


MANIFEST_DEFECTS = [
    ("files/policy.onnx/bytes", "x", "files.policy.onnx.bytes must be an integer >= 0, got 'x'"),
    ("files/policy.onnx/bytes", -1, "files.policy.onnx.bytes must be an integer >= 0, got -1"),
    ("files/policy.onnx/sha256", 5, "files.policy.onnx.sha256 must be 64 hex digits, got 5"),
    ("observation_space/shape", ["a"], "observation_space.shape[0] must be an integer >= 1"),
    ("observation_space/shape", 9, "observation_space.shape must be a list of integers >= 1"),
    ("action_space/n", 0, "action_space.n must be an integer >= 1, got 0"),
    ("action_space/n", "4", "action_space.n must be an integer >= 1, got '4'"),
    ("action_space/type", "multi", "action_space.type must be 'discrete' or 'box'"),
    ("weights/0", "x", "weights[0] must be an object, got 'x'"),
    ("weights/0/offset_bytes", -4, "weights[0].offset_bytes must be an integer >= 0"),
    ("weights/0/count", 3, "weights[0].count must be the shape's size"),
    ("weights/0/shape", [64, "9"], "weights[0].shape[1] must be an integer >= 1"),
    ("weights/0/name", None, "weights[0].name must be a non-empty string"),
    ("adapter/inner_lr", "fast", "adapter.inner_lr must be a number"),
    ("context", 5, "context must be an object (or null)"),
]


@pytest.mark.parametrize(("field", "value", "message"), MANIFEST_DEFECTS)
def test_a_bad_policy_json_field_is_one_line(field: str, value: Any, message: str,
                                             exported: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(exported, tmp_path / "export"))
    manifest = json.loads((folder / "policy.json").read_text())
    _set(field, value)(manifest)
    (folder / "policy.json").write_text(json.dumps(manifest))
    assert_one_line_error(invoke("play", folder), "policy.json: " + message)


def test_a_continuous_action_space_needs_bounds_of_its_size() -> None:
    from gameadapt.ship.onnxpolicy import PolicyLoadError, check_manifest
    good = {"observation_space": {"shape": [4]},
            "action_space": {"type": "box", "shape": [2], "low": ["-inf", -1.0],
                             "high": [1, "inf"]}}
    check_manifest(good, Path("policy.json"))
    bad = json.loads(json.dumps(good))
    bad["action_space"]["low"] = [-1.0]
    with pytest.raises(PolicyLoadError, match=r"action_space\.low must be a list of 2 numbers"):
        check_manifest(bad, Path("policy.json"))
    bad["action_space"]["low"] = ["-inf", "lots"]
    with pytest.raises(PolicyLoadError, match=r"action_space\.low must be a list of 2"):
        check_manifest(bad, Path("policy.json"))


@pytest.mark.parametrize(("data", "message"), [
    ('{"format": "gameadapt-policy/1"}'.encode("utf-16"), "is not UTF-8 text"),
    (("[" * DEEP + "]" * DEEP).encode(), "is nested deeper than the limit of 32 levels"),
])
def test_a_policy_json_in_another_encoding_or_too_deep(data: bytes, message: str,
                                                       exported: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(exported, tmp_path / "export"))
    (folder / "policy.json").write_bytes(data)
    assert_one_line_error(invoke("play", folder), "policy.json", message)


def test_a_policy_json_with_a_bom_loads(exported: Path, tmp_path: Path) -> None:
    from gameadapt.ship.onnxpolicy import OnnxPolicy
    folder = Path(shutil.copytree(exported, tmp_path / "export"))
    path = folder / "policy.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert OnnxPolicy.load(folder).action_dim == 4


# -- algorithm_config: a saved run is rebuilt as it was recorded ------------------------------
@pytest.mark.parametrize("algorithm", BUILTIN_ALGORITHMS)
def test_algorithm_options_round_trip_through_make(algorithm: str) -> None:
    spec = get_registry().algorithm(algorithm)
    options = spec.make({}).options()
    recorded = json.loads(json.dumps(options))  # as config.json holds them
    assert spec.make(recorded).options() == options


def test_a_run_is_rebuilt_from_its_algorithm_config(run_copy: Path) -> None:
    """A default changed since (here: the recorded outer_lr differs from today's) never
    changes a saved run; a run without algorithm_config uses train.options as before."""
    default_lr = get_registry().algorithm("maml").make({}).options()["outer_lr"]
    edit_config(run_copy, lambda data: data["algorithm_config"].update(outer_lr=0.0123))
    session = load_session(RunDir(run_copy))
    assert session.algorithm.options()["outer_lr"] == 0.0123
    assert session.iteration == 2
    edit_config(run_copy, lambda data: data.pop("algorithm_config"))
    assert load_session(RunDir(run_copy)).algorithm.options()["outer_lr"] == default_lr


# -- adapted policies: the same checks ----------------------------------------------------------
@pytest.fixture(scope="module")
def adapted(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validation-adapted") / "adapted"
    result = invoke("adapt", trained, "-v", "level.seed=3", "--episodes", "2",
                    "--eval-episodes", "2", "-o", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(("change", "message"), [
    (_nan_weights, "tensor policy['body.0.weight'] holds NaN or infinite values"),
    (lambda p: p["train"].update(algorithm="reptile"),
     "algorithm 'maml' differs from train.algorithm 'reptile'"),
    (lambda p: p["train"].update(seed=-1), "adapted.pt: invalid train.seed -1"),
    (lambda p: p.update(variant=[1]), "variant must be an object (got list)"),
])
def test_a_bad_adapted_checkpoint_is_refused_by_export(change: Any, message: str,
                                                       adapted: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(adapted, tmp_path / "adapted"))
    path = folder / "adapted.pt"
    payload = torch.load(path, weights_only=True)
    change(payload)
    payload["checksum"] = content_digest(payload)
    torch.save(payload, path)
    before = snapshot(folder)
    assert_one_line_error(invoke("export", folder, "-o", tmp_path / "export"), message)
    assert snapshot(folder) == before and not (tmp_path / "export").exists()
