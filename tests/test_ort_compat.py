"""Issue 16, items 1 and 3: the IR version every graph is stamped with, its ``metadata_props``
and graph name, the manifest's ``ir_version`` / ``min_onnxruntime``, and the old-runtime
checker (``scripts/ort_compat_check.py``). Fast: tiny hand-made graphs; the exports' own
files are checked in test_export / test_recurrent_export / test_context_export, and the
old ONNX Runtime itself by ``scripts/ort_compat.sh`` in CI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gameadapt.errors import GameadaptError
from gameadapt.ship import formats, manifest, stamp
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from selfdescribing import assert_self_describing

ROOT = Path(__file__).resolve().parent.parent
ESSENTIALS = {"format": formats.FORMAT, "game": "gridnav", "action_mode": "greedy",
              "observation_space": {"type": "box", "shape": [3]},
              "action_space": {"type": "box", "shape": [2]},
              "action_scaling": {"center": [0.0, 0.0], "scale": [1.0, 2.0],
                                 "low": [-1.0, -2.0], "high": [1.0, 2.0]},
              "state_size": None, "latent_size": None}


def tiny_model(opsets: dict[str, int], ir_version: int = 10) -> onnx.ModelProto:
    """``y = x @ W`` (W an initializer) importing ``opsets``, stamped IR 10 as torch does."""
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 6, "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "main_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], [weight])
    return helper.make_model(graph, ir_version=ir_version, opset_imports=[
        helper.make_opsetid(domain, version) for domain, version in opsets.items()])


@pytest.mark.parametrize(("opsets", "ir"), [
    ({"": 7}, 4), ({"": 11}, 6), ({"": 14}, 7), ({"": 15}, 8), ({"": 18}, 8), ({"": 19}, 9),
    ({"": 21}, 10), ({"": 18, "com.microsoft": 1}, 8), ({"": 11, "com.microsoft": 1}, 6),
    ({"": 15, "ai.onnx.ml": 3}, 8)])
def test_each_graph_gets_the_lowest_ir_version_its_opsets_need(opsets, ir) -> None:
    model = stamp.stamp(tiny_model(opsets), "policy.onnx", ESSENTIALS)
    assert model.ir_version == ir
    onnx.checker.check_model(model, full_check=True)


def test_initializers_as_inputs_allow_ir_3() -> None:
    model = tiny_model({"": 7})
    model.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2]))
    assert stamp.stamp(model, "policy.onnx", ESSENTIALS).ir_version == 3


def test_local_functions_need_ir_8() -> None:
    model = tiny_model({"": 11, "local": 1})
    model.functions.append(helper.make_function("local", "Same", ["a"], ["b"],
                                                [helper.make_node("Identity", ["a"], ["b"])],
                                                [helper.make_opsetid("", 11)]))
    assert stamp.min_ir_version(model) == 8


def test_the_metadata_holds_the_essentials_as_json_strings_and_the_graph_a_name() -> None:
    model = tiny_model({"": 15})
    model.metadata_props.add(key="onnx.infer", value="onnxruntime.quant")  # kept
    model.metadata_props.add(key="gameadapt.game", value='"stale"')  # replaced
    stamp.stamp(model, "encoder.onnx", ESSENTIALS)
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert props.pop("onnx.infer") == "onnxruntime.quant"
    assert sorted(props) == sorted(f"gameadapt.{key}" for key in stamp.METADATA_KEYS)
    assert {key: json.loads(value) for key, value in props.items()} == {
        **{f"gameadapt.{key}": value for key, value in ESSENTIALS.items()},
        "gameadapt.role": "encoder", "gameadapt.manifest": "policy.json"}
    assert stamp.read_metadata(model)["action_scaling"]["scale"] == [1.0, 2.0]
    assert model.graph.name == "gameadapt_encoder"
    meta = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.graph_name == "gameadapt_encoder"
    assert json.loads(meta.custom_metadata_map["gameadapt.role"]) == "encoder"


def test_an_undocumented_metadata_key_is_refused() -> None:
    with pytest.raises(GameadaptError, match="undocumented"):
        stamp.stamp(tiny_model({"": 15}), "policy.onnx", {**ESSENTIALS, "secret": 1})


@pytest.mark.parametrize("opset", [15, 18])
def test_an_int8_copy_is_restamped_with_its_com_microsoft_domain_counted(tmp_path, opset
                                                                          ) -> None:
    source, target = tmp_path / "policy.onnx", tmp_path / "policy.int8.onnx"
    onnx.save(stamp.stamp(tiny_model({"": opset}), "policy.onnx", ESSENTIALS), str(source))
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    quantized = onnx.load(str(target))
    quantized.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    quantized.ir_version = 10
    onnx.save(quantized, str(target))
    stamp.stamp_file(target, ESSENTIALS)
    model = onnx.load(str(target))
    assert {op.domain for op in model.opset_import} >= {"com.microsoft"}
    assert model.ir_version == 8 and model.graph.name == "gameadapt_policy_int8"
    assert stamp.read_metadata(model)["role"] == "policy_int8"
    assert {node.op_type for node in model.graph.node} & {"MatMulInteger",
                                                         "DynamicQuantizeLinear"}
    ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])


def test_the_manifest_entry_states_ir_version_and_the_verified_oldest_runtime() -> None:
    data = stamp.stamp(tiny_model({"": 15}), "policy.onnx", ESSENTIALS).SerializeToString()
    entry = manifest.onnx_file_entry("policy.onnx", data, {"policy.onnx": "dynamo"})
    assert entry == {"opset": 15, "ir_version": 8, "exporter": "dynamo",
                     "min_onnxruntime": formats.OLDEST_ONNXRUNTIME["policy.onnx"]}
    for name in stamp.ROLES:  # every kind of file, at the checked opsets only
        assert formats.min_onnxruntime(name, formats.DEFAULT_OPSET, "9.9") == "1.15.1"
        assert formats.min_onnxruntime(name, 15, "9.9") == "1.15.1"
        assert formats.min_onnxruntime(name, 17, "9.9") == "9.9"
    assert formats.ORT_CHECKED_OPSETS == (15, formats.DEFAULT_OPSET)


def fake_export(folder: Path, opset: int = 15) -> Path:
    """An export folder with one stamped graph and a manifest as the export writes it."""
    folder.mkdir(parents=True)
    data = stamp.stamp(tiny_model({"": opset}), "policy.onnx", ESSENTIALS).SerializeToString()
    (folder / "policy.onnx").write_bytes(data)
    files = {"policy.onnx": {"path": "policy.onnx", "sha256": manifest.sha256_bytes(data),
                             "bytes": len(data),
                             **manifest.onnx_file_entry("policy.onnx", data, {})}}
    (folder / "policy.json").write_text(json.dumps(
        {**ESSENTIALS, "recurrent": None, "context": None, "files": files,
         "onnxruntime_version": ort.__version__}))
    return folder


def checker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "ort_compat_check.py"), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_checker_passes_equal_outputs_and_fails_differing_ones(tmp_path) -> None:
    folder = fake_export(tmp_path / "exports" / "tiny")
    assert assert_self_describing(folder) == ["policy.onnx"]
    assert checker("record", str(tmp_path / "exports")).returncode == 0
    passed = checker("compare", str(tmp_path / "exports"))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "tiny/policy.onnx" in passed.stdout and "1 of 1 files passed" in passed.stdout
    saved = dict(np.load(folder / "policy.onnx.ortcheck.npz"))
    saved["out.y"] = saved["out.y"] + 1e-3
    np.savez(folder / "policy.onnx.ortcheck.npz", **saved)
    failed = checker("compare", str(tmp_path / "exports"))
    assert failed.returncode == 1 and "no: differs by 0.001" in failed.stdout


def test_the_checker_fails_a_file_without_metadata_and_an_empty_folder(tmp_path) -> None:
    assert checker("compare", str(tmp_path)).returncode == 1  # nothing checked is a failure
    folder = fake_export(tmp_path / "tiny")
    assert checker("record", str(tmp_path)).returncode == 0
    model = onnx.load(str(folder / "policy.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(folder / "policy.onnx"))
    failed = checker("compare", str(tmp_path))
    assert failed.returncode == 1 and "no gameadapt.role metadata" in failed.stdout


def test_ci_runs_the_compatibility_check() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/ort_compat.sh" in ci
    script = (ROOT / "scripts" / "ort_compat.sh").read_text()
    assert '"numpy<2"' in script and "1.15.1" in script and "--opset 15" in script
    for kind in ("--with-adapter --quantize int8", "pointnav rl2", "gridnav context"):
        assert kind in script
