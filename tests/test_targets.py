"""``gameadapt export --target ort|sentis|godot|web`` (issue 16, item 2), and the int8 copy
that keeps its output layer in float and never stops the float32 export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.errors import GameadaptError
from gameadapt.learn.policy import MLPPolicy
from gameadapt.ship import export, onnx_export, sentis, targets, verify
from gameadapt.ship.onnxpolicy import OnnxPolicy
from onnx import TensorProto, helper
from selfdescribing import assert_self_describing

ROOT = Path(__file__).resolve().parent.parent
TINY = ("--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu")


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result: Any) -> str:
    """The one ``Error:`` line of a failed command (and that it is the last line)."""
    assert result.exit_code != 0, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.strip().splitlines()[-1] == errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


def session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def observations(game: str, count: int = 300) -> np.ndarray:
    rng = np.random.default_rng(3)
    dim = 9 if game == "gridnav" else 2
    return rng.uniform(-1, 1, (count, dim)).astype(np.float32)


# -- the target table, pure Python --------------------------------------------------------------
def test_each_target_fixes_its_opset_and_refuses_a_conflicting_one() -> None:
    assert targets.resolve_opset(targets.get_target("ort"), None) == 18
    assert targets.resolve_opset(targets.get_target("ort"), 13) == 13
    assert targets.resolve_opset(targets.get_target("sentis"), None) == 15
    assert targets.resolve_opset(targets.get_target("sentis"), 15) == 15
    assert targets.resolve_opset(targets.get_target("godot"), 15) == 15
    assert targets.resolve_opset(targets.get_target("web"), None) == 18
    with pytest.raises(GameadaptError, match="--target sentis exports at opset 15"):
        targets.resolve_opset(targets.get_target("sentis"), 18)
    with pytest.raises(GameadaptError, match="--target godot exports at opset 15 or 18"):
        targets.resolve_opset(targets.get_target("godot"), 17)
    with pytest.raises(GameadaptError, match="--target must be one of ort, sentis, godot, web"):
        targets.get_target("unreal")


def test_what_a_target_cannot_take_is_refused_in_one_line() -> None:
    with pytest.raises(GameadaptError, match="Sentis cannot import int8.*QuantizeWeights"):
        targets.check_target(targets.get_target("sentis"), "int8", "gradient", "maml")
    with pytest.raises(GameadaptError, match="float32 graphs only"):
        targets.check_target(targets.get_target("web"), "int8", "gradient", "maml")
    for family, algorithm in (("recurrent", "rl2"), ("context", "context")):
        with pytest.raises(GameadaptError, match="never feeds a state back.*--target ort"):
            targets.check_target(targets.get_target("godot"), None, family, algorithm)
    targets.check_target(targets.get_target("godot"), "int8", "gradient", "maml")
    targets.check_target(targets.get_target("ort"), "int8", "context", "context")


def test_the_sentis_list_is_the_importers_operators_with_its_source() -> None:
    text = (ROOT / "engine/ship/data/sentis_operators.txt").read_text()
    assert "needle-mirror/com.unity.sentis" in text and "com.unity.ai.inference" in text
    operators = sentis.sentis_operators()
    assert len(operators) == 135
    assert {"Gemm", "MatMul", "Tanh", "ArgMax", "Softplus", "Where"} <= operators
    assert not {"DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul"} & operators


def test_an_operator_outside_the_list_is_named() -> None:
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"]),
         helper.make_node("FusedGemm", ["x", "x"], ["y"], domain="com.microsoft"),
         helper.make_node("Tanh", ["x"], ["t"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in "yt"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15),
                                                    helper.make_opsetid("com.microsoft", 1)])
    assert sentis.unsupported_operators(model) == ["DynamicQuantizeLinear",
                                                   "com.microsoft::FusedGemm"]


# -- int8 keeps the output layer in float -------------------------------------------------------
def pendulum_like_policy() -> MLPPolicy:
    """A Box(-2, 2) policy whose head has one large weight among small ones (its int8 step
    then rounds the small ones away): with the head in int8 too the action misses the
    tolerance, with the head in float it meets it."""
    torch.manual_seed(0)
    policy = MLPPolicy(gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32),
                       gymnasium.spaces.Box(-2.0, 2.0, (1,), np.float32), (64, 64))
    with torch.no_grad():
        policy.head.weight.normal_(0.0, 0.02)
        policy.head.weight[0, 0] = 4.0
        policy.head.bias.zero_()
    return policy.eval()


def test_int8_keeps_the_output_layer_in_float_and_passes_on_continuous_actions(
        tmp_path, monkeypatch) -> None:
    policy = pendulum_like_policy()
    graph = onnx_export.export_policy_graph(policy, 18)
    source = tmp_path / "policy.onnx"
    source.write_bytes(graph.model.SerializeToString())
    head = next(node for node in graph.model.graph.node if "policy.head.weight" in node.input)
    assert verify.output_layer_nodes(source) == [head.name, f"{head.name}_MatMul"]
    obs = np.random.default_rng(0).uniform(-1, 1, (1000, 3)).astype(np.float32)
    kept = verify.quantize_int8(policy, source, tmp_path / "policy.int8.onnx", obs)
    assert kept["passed"], kept
    ops = [node.op_type for node in onnx.load(str(tmp_path / "policy.int8.onnx")).graph.node]
    assert ops.count("MatMulInteger") == 2 and "MatMul" in ops  # the body in int8, the head not
    monkeypatch.setattr(verify, "output_layer_nodes", lambda path: [])
    everything = verify.quantize_int8(policy, source, tmp_path / "all.int8.onnx", obs)
    assert not everything["passed"] and "'action' differs" in everything["failure"]
    assert everything["max_abs_diff"]["action"] > 1.5 * kept["max_abs_diff"]["action"]


# -- exports ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("target-runs")
    made = {}
    for name, game, algo in (("grid", "gridnav", "maml"), ("point", "pointnav", "maml"),
                             ("grid-rl2", "gridnav", "rl2"), ("grid-ctx", "gridnav", "context"),
                             ("point-rl2", "pointnav", "rl2")):
        result = invoke("train", game, "--algo", algo, *TINY, "--run-dir", base / name)
        assert result.exit_code == 0, result.output
        made[name] = base / name
    return made


@pytest.mark.slow
@pytest.mark.parametrize("run", ["grid", "point"])
def test_godot_target_writes_the_signature_godot_rl_agents_reads(runs, run, tmp_path) -> None:
    out = tmp_path / "godot"
    result = invoke("export", runs[run], "-o", out, "--target", "godot", "--with-adapter")
    assert result.exit_code == 0, result.output
    assert "godot.onnx (obs, state_ins -> output" in result.output
    manifest = json.loads((out / "policy.json").read_text())
    assert manifest["target"]["name"] == "godot"
    assert manifest["files"]["godot.onnx"]["min_onnxruntime"] == "1.15.1"
    assert manifest["files"]["godot.onnx"]["ir_version"] == 8
    godot = session(out / "godot.onnx")
    assert [(i.name, i.type) for i in godot.get_inputs()] == [("obs", "tensor(float)"),
                                                              ("state_ins", "tensor(float)")]
    assert [(o.name, o.type) for o in godot.get_outputs()] == [("output", "tensor(float)"),
                                                               ("state_outs", "tensor(float)")]
    width = 4 if run == "grid" else 2
    assert godot.get_outputs()[0].shape[1] == width  # Initialize() reads Dimensions[1]
    obs = observations("gridnav" if run == "grid" else "pointnav")
    policy = session(out / "policy.onnx")
    feeds = {"observation": obs}
    if manifest["noise"]:  # a sampled policy.onnx: its logits and mean do not depend on it
        feeds["noise"] = np.full((len(obs), manifest["noise"]["shape"][1]), 0.5, np.float32)
    plain = dict(zip([o.name for o in policy.get_outputs()], policy.run(None, feeds)))
    for row in obs[:20]:  # as ONNXInference.RunInference calls it: batch 1, state_ins 1
        output, state = godot.run(None, {"obs": row[None], "state_ins": np.ones(1, np.float32)})
        assert state.tolist() == [1.0]
    output, state = godot.run(None, {"obs": obs, "state_ins": np.full(len(obs), 7, np.float32)})
    assert np.all(state == 7)
    if run == "grid":  # logits per branch: the sync node's argmax is the greedy action
        np.testing.assert_allclose(output, plain["logits"], atol=1e-6)
    else:  # the greedy env action in [-1, 1] across the bounds (the sync node clamps to it)
        scaling = manifest["action_scaling"]
        greedy = np.clip(np.array(scaling["center"]) + np.array(scaling["scale"]) * plain["mean"],
                         scaling["low"], scaling["high"])
        low, high = np.array(scaling["low"]), np.array(scaling["high"])
        np.testing.assert_allclose(low + (output + 1) / 2 * (high - low), greedy, atol=1e-6)
        assert np.all(np.abs(output) <= 1 + 1e-6)
    assert "godot.onnx" in assert_self_describing(out)
    OnnxPolicy.load(out)  # the reference loader checks every file, godot.onnx too


@pytest.mark.slow
@pytest.mark.parametrize("run", ["grid-rl2", "grid-ctx"])
def test_godot_target_refuses_the_state_carrying_families(runs, run, tmp_path) -> None:
    line = one_error_line(invoke("export", runs[run], "-o", tmp_path / "e", "--target", "godot"))
    assert "never feeds a state back" in line and "--target ort" in line
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("run", "options"), [
    ("grid", ["--with-adapter"]), ("grid", ["--action", "sampled", "--with-adapter"]),
    ("point", ["--with-adapter", "--action", "sampled"]), ("grid-rl2", []),
    ("grid-rl2", ["--action", "sampled"]), ("point-rl2", ["--action", "sampled"]),
    ("grid-ctx", []), ("grid-ctx", ["--latent", "sample"])])
def test_sentis_target_uses_only_operators_every_sentis_imports(runs, run, options,
                                                                tmp_path) -> None:
    out = tmp_path / "sentis"
    result = invoke("export", runs[run], "-o", out, "--target", "sentis", *options)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "policy.json").read_text())
    assert manifest["target"]["sentis"]["passed"]
    for name, entry in manifest["files"].items():
        if name.endswith(".onnx"):
            model = onnx.load(str(out / name))
            assert entry["opset"] == 15 and model.ir_version == 8
            assert sentis.unsupported_operators(model) == [], name
            assert {node.op_type for node in model.graph.node} <= sentis.sentis_operators()


@pytest.mark.slow
def test_sentis_and_web_refuse_int8_before_anything_is_built(runs, tmp_path) -> None:
    for target in ("sentis", "web"):
        line = one_error_line(invoke("export", runs["point"], "-o", tmp_path / target,
                                     "--target", target, "--quantize", "int8"))
        assert f"--target {target} --quantize int8" in line
        assert not (tmp_path / target).exists()
    line = one_error_line(invoke("export", runs["grid"], "-o", tmp_path / "s", "--target",
                                 "sentis", "--opset", "18"))
    assert "exports at opset 15" in line


@pytest.mark.slow
def test_sentis_check_stops_an_export_that_uses_another_operator(runs, tmp_path,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(sentis, "sentis_operators", lambda: frozenset({"Gemm"}))
    line = one_error_line(invoke("export", runs["grid"], "-o", tmp_path / "s", "--target",
                                 "sentis"))
    assert "--target sentis: policy.onnx uses" in line and "Unity Sentis cannot import" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_a_failed_int8_copy_never_stops_the_float_export(runs, tmp_path, monkeypatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"type": "int8-dynamic", "file": "policy.int8.onnx", "passed": False,
                "failure": "output 'action' differs from PyTorch (int8) by 0.504 (tolerance 0.2)"}

    monkeypatch.setattr(verify, "quantize_int8", failing)
    out = tmp_path / "e"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export.export_policy(runs["point"], out, quantize="int8", with_adapter=True)
    assert any("policy.int8.onnx was not written" in str(w.message) for w in caught)
    manifest = json.loads((out / "policy.json").read_text())
    assert manifest["quantization"]["passed"] is False and "0.504" in \
        manifest["quantization"]["failure"]
    assert "policy.int8.onnx" not in manifest["files"] and not (out / "policy.int8.onnx").exists()
    assert {"policy.onnx", "adapter.onnx", "policy_weights.onnx", "weights.bin"} <= \
        set(manifest["files"])
    assert set(result.files) == {*manifest["files"], "policy.json"}
    assert OnnxPolicy.load(out).has_adapter


@pytest.mark.slow
def test_web_target_is_opset_18_float_and_ort_is_the_default(runs, tmp_path) -> None:
    result = invoke("export", runs["grid"], "-o", tmp_path / "w", "--target", "web",
                    "--with-adapter")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "w" / "policy.json").read_text())
    assert manifest["target"] == {"name": "web", "runtime": "onnxruntime-web (WASM)"}
    assert {entry.get("opset") for entry in manifest["files"].values()} == {18, None}
    result = invoke("export", runs["grid"], "-o", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "policy.json").read_text())["target"]["name"] == "ort"


def test_the_which_target_table_lists_every_target_with_its_opset() -> None:
    text = (ROOT / "exports/README.md").read_text()
    table = text.split("## Which target?", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`") and cells[0] != "`--target`":
            rows[cells[0].split("`")[1]] = cells
    assert tuple(rows) == targets.TARGET_NAMES
    for name, cells in rows.items():
        target = targets.get_target(name)
        assert cells[2].startswith(str(targets.resolve_opset(target, None)))
        refused = bool(target.int8)
        assert ("refused" in cells[3] or cells[3].startswith("none")) == refused, name
        for path in ("tests/test_targets.py", "scripts/ort_compat.sh",
                     "tests/test_readme_snippets.py", "tests/test_playground_browser.py",
                     "engine/ship/data/sentis_operators.txt"):
            if path in cells[5]:
                assert (ROOT / path).is_file(), path  # the check the table cites exists
