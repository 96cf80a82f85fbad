"""``gameadapt export``: ONNX files + manifest, verified against PyTorch, written atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.learn.meta import TaskBatch, inner_loss
from gameadapt.learn.policy import distribution_params, policy_params
from gameadapt.ship import export, formats, onnx_export, onnxpolicy
from gameadapt.ship import verify as verify_export
from gameadapt.ship.sources import load_policy_source
from selfdescribing import assert_self_describing

pytestmark = pytest.mark.slow  # every test exports ONNX files and runs ONNX Runtime

MANIFEST_KEYS = {
    "format", "game", "variant", "observation_space", "action_space", "action_semantics",
    "action_mode", "noise", "recurrent", "value_scale",
    "inputs", "outputs", "opset", "engine_version", "torch_version", "onnxruntime_version",
    "provenance", "files", "weights", "adapter", "verification", "latency_us", "quantization",
    "target",
}


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result: Any, message: str) -> None:
    """A non-zero exit with exactly one ``Error:`` line (progress lines may precede it)."""
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert result.output.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.output


def train(game: str, run_dir: Path) -> Path:
    # normalisation on, so the exported graph must carry non-trivial statistics
    result = invoke("train", game, "--iterations", 1, "--meta-batch", 2, "--envs-per-task", 2,
                    "--device", "cpu", "-o", "normalize_observations=true", "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("export-runs")
    return {game: train(game, base / game) for game in ("pointnav", "gridnav")}


@pytest.fixture(scope="module")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pointnav: --with-adapter --quantize int8 (opset 18); gridnav: --with-adapter --opset 15."""
    base = tmp_path_factory.mktemp("exports")
    folders = {"pointnav": base / "pointnav", "gridnav": base / "gridnav"}
    for game, extra in (("pointnav", ["--quantize", "int8"]), ("gridnav", ["--opset", 15])):
        result = invoke("export", runs[game], "-o", folders[game], "--with-adapter",
                        "--action", "greedy", *extra)
        assert result.exit_code == 0, result.output
        assert str(folders[game]) in result.output and "passed" in result.output
        assert "latency" in result.output
    return folders


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "policy.json").read_text())


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_all(sess: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def torch_reference(policy: Any, obs: np.ndarray, params: dict | None = None
                    ) -> dict[str, np.ndarray]:
    """The expected outputs, from the engine's own functions (not the export's)."""
    x = torch.from_numpy(obs)
    with torch.no_grad():
        dist = distribution_params(policy, params or policy_params(policy), x)
        if policy.discrete:
            return {"action": torch.argmax(dist[0], -1).numpy(), "logits": dist[0].numpy()}
        action = policy.to_env_action(dist[0])
        return {"action": action.numpy(), "mean": dist[0].numpy(), "log_std": dist[1].numpy()}


def fresh_observations(policy: Any, count: int, seed: int) -> np.ndarray:
    """Observations around the normaliser's statistics, some far out (clip), float32."""
    generator = torch.Generator().manual_seed(seed)
    std = torch.sqrt(policy.obs_var)
    z = torch.randn(count, policy.obs_dim, generator=generator) * 3
    z[: count // 8] *= 30
    return (policy.obs_mean + z * std).to(torch.float32).numpy()


def read_weights(folder: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    raw = (folder / "weights.bin").read_bytes()
    return {w["input_name"]: np.frombuffer(raw, "<f4", w["count"], w["offset_bytes"])
            .reshape(w["shape"]).astype(np.float32) for w in manifest["weights"]}


# -- files, manifest, parity --------------------------------------------------------------------
@pytest.mark.parametrize("game", ["pointnav", "gridnav"])
def test_export_writes_verified_files_and_a_complete_manifest(exported, game) -> None:
    folder = exported[game]
    manifest = manifest_of(folder)
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["format"] == "gameadapt-policy/1" and manifest["game"] == game
    expected_files = {"policy.onnx", "policy_weights.onnx", "adapter.onnx", "weights.bin"}
    if game == "pointnav":
        expected_files.add("policy.int8.onnx")
    assert set(manifest["files"]) == expected_files
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected_files | {"policy.json"})
    for name, entry in manifest["files"].items():
        data = (folder / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        if name.endswith(".onnx"):
            onnx.checker.check_model(str(folder / name), full_check=True)
            session(folder / name)
    assert manifest["opset"] == onnx_export.model_opset(onnx.load(str(folder / "policy.onnx")))
    check = manifest["verification"]
    assert check["passed"] and check["onnx_checker"] and check["samples"] >= 1000
    assert check["observations"]["played"] >= 1000  # real game observations
    assert all(diff <= 1e-5 for diff in check["max_abs_diff"].values())
    assert set(check["max_abs_diff"]) == {o["name"] for o in manifest["outputs"]}
    assert manifest["latency_us"]["batch_1"] > 0 and manifest["latency_us"]["batch_64"] > 0
    assert manifest["provenance"]["algorithm"] == "maml"
    assert manifest["provenance"]["iterations"] == 1 and manifest["provenance"]["adapted"] is None
    assert manifest["adapter"]["inner_lr"] == pytest.approx(0.1)
    assert [i["name"] for i in manifest["inputs"]] == ["observation"]
    assert manifest["inputs"][0]["shape"][0] == "batch"
    assert manifest["action_mode"] == "greedy" and manifest["noise"] is None  # as asked
    assert manifest["recurrent"] is None and check["action"] == "greedy"
    assert manifest["value_scale"] is None  # a gradient-family policy has no value output
    assert manifest["adapter"]["policy_weights_action"].startswith("greedy")
    json.loads((folder / "policy.json").read_text(), parse_constant=pytest.fail)  # strict JSON


@pytest.mark.parametrize("game", ["pointnav", "gridnav"])
def test_onnx_equals_torch_on_fresh_observations_at_any_batch_size(runs, exported, game) -> None:
    policy = load_policy_source(runs[game]).policy
    sess = session(exported[game] / "policy.onnx")
    assert sess.get_inputs()[0].name == "observation"
    assert sess.get_inputs()[0].shape[0] == "batch"
    assert all(o.shape[0] == "batch" for o in sess.get_outputs())
    names = [o.name for o in sess.get_outputs()]
    assert names == (["action", "logits"] if game == "gridnav" else ["action", "mean", "log_std"])
    obs = fresh_observations(policy, 500, seed=7)
    for batch in (1, 37, 500):
        got = run_all(sess, {"observation": obs[:batch]})
        want = torch_reference(policy, obs[:batch])
        for name, value in want.items():
            assert got[name].shape == value.shape
            if name == "action" and policy.discrete:
                assert got[name].dtype == np.int64
                np.testing.assert_array_equal(got[name], value)
            else:
                assert got[name].dtype == np.float32
                np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-5)


@pytest.mark.parametrize("game", ["pointnav", "gridnav"])
def test_observation_normalisation_and_its_clip_are_inside_the_graph(runs, exported, game) -> None:
    policy = load_policy_source(runs[game]).policy
    assert float(policy.obs_count) > 0
    assert not torch.allclose(policy.obs_var, torch.ones_like(policy.obs_var))
    assert not torch.allclose(policy.obs_mean, torch.zeros_like(policy.obs_mean))
    sess = session(exported[game] / "policy.onnx")
    head = "logits" if policy.discrete else "mean"
    raw = fresh_observations(policy, 64, seed=3)
    got = run_all(sess, {"observation": raw})[head]
    with torch.no_grad():
        normalised = policy(torch.from_numpy(raw)).numpy()
        unnormalised = policy.head(policy.body(torch.from_numpy(raw))).numpy()
    np.testing.assert_allclose(got, normalised, atol=1e-5)
    assert np.abs(got - unnormalised).max() > 1e-3
    # 50 and 500 standard deviations out both normalise to the clip (+10): same outputs
    std = torch.sqrt(policy.obs_var + 1e-8)
    far = [(policy.obs_mean + k * std).unsqueeze(0).numpy().astype(np.float32) for k in (50, 500)]
    outputs = [run_all(sess, {"observation": x})[head] for x in far]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)


def test_continuous_action_is_the_mean_mapped_and_clipped_to_the_bounds(runs, tmp_path) -> None:
    source = load_policy_source(runs["pointnav"])
    with torch.no_grad():  # push the mean far beyond the bounds in one dimension
        source.policy.head.bias.copy_(torch.tensor([40.0, -40.0]))
    result = export.export_policy(source, tmp_path / "clip")
    sess = session(tmp_path / "clip" / "policy.onnx")
    got = run_all(sess, {"observation": fresh_observations(source.policy, 100, seed=5)})
    low, high = source.spec.action_space.low, source.spec.action_space.high
    assert (got["action"] >= low).all() and (got["action"] <= high).all()
    np.testing.assert_array_equal(got["action"][:, 0], np.full(100, high[0], np.float32))
    np.testing.assert_array_equal(got["action"][:, 1], np.full(100, low[1], np.float32))
    scaling = result.manifest["action_scaling"]
    mapped = np.clip(np.asarray(scaling["center"]) + np.asarray(scaling["scale"]) * got["mean"],
                     low, high)
    np.testing.assert_allclose(got["action"], mapped, atol=1e-6)


def test_opset_15_imports_at_most_15_and_passes(exported) -> None:
    folder = exported["gridnav"]
    for name in ("policy.onnx", "policy_weights.onnx", "adapter.onnx"):
        model = onnx.load(str(folder / name))
        versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        assert versions and max(versions) <= 15
    manifest = manifest_of(folder)
    assert manifest["opset"] <= 15
    assert manifest["verification"]["passed"] and manifest["verification"]["adapter"]["passed"]


def test_an_old_opset_falls_back_to_the_torchscript_exporter(runs, tmp_path) -> None:
    result = invoke("export", runs["gridnav"], "-o", tmp_path / "old", "--opset", 11)
    assert result.exit_code == 0, result.output
    manifest = manifest_of(tmp_path / "old")
    assert manifest["opset"] == 11 and manifest["files"]["policy.onnx"]["exporter"] == "torchscript"
    assert onnx.load(str(tmp_path / "old" / "policy.onnx")).opset_import[0].version <= 11
    assert manifest["verification"]["passed"]


def test_quantize_int8_writes_a_verified_int8_file(runs, exported) -> None:
    folder = exported["pointnav"]
    quantization = manifest_of(folder)["quantization"]
    assert quantization["type"] == "int8-dynamic" and quantization["file"] == "policy.int8.onnx"
    assert quantization["passed"]
    assert quantization["latency_us"]["batch_1"] > 0 and quantization["latency_us"]["batch_64"] > 0
    for name, diff in quantization["max_abs_diff"].items():
        assert diff <= quantization["tolerance"][name]
    model = onnx.load(str(folder / "policy.int8.onnx"))
    assert {"MatMulInteger", "DynamicQuantizeLinear"} & {node.op_type for node in model.graph.node}
    policy = load_policy_source(runs["pointnav"]).policy
    obs = fresh_observations(policy, 200, seed=11)
    got = run_all(session(folder / "policy.int8.onnx"), {"observation": obs})
    np.testing.assert_allclose(got["mean"], torch_reference(policy, obs)["mean"], atol=0.1)
    assert manifest_of(exported["gridnav"])["quantization"] is None


# -- the adapter --------------------------------------------------------------------------------
@pytest.mark.parametrize("game", ["pointnav", "gridnav"])
def test_adapter_equals_the_engines_inner_step(runs, exported, game) -> None:
    folder = exported[game]
    manifest = manifest_of(folder)
    policy = load_policy_source(runs[game]).policy
    names = [name for name, _ in policy.named_parameters()]
    assert [w["name"] for w in manifest["weights"]] == names
    assert [w["input_name"] for w in manifest["weights"]] == [
        n.replace(".", "_") + ("_param" if n == "log_std" else "") for n in names]
    weights = read_weights(folder, manifest)
    for w in manifest["weights"]:  # weights.bin holds the policy's parameters, in order
        np.testing.assert_array_equal(weights[w["input_name"]],
                                      dict(policy.named_parameters())[w["name"]].detach().numpy())

    # policy_weights.onnx fed weights.bin equals policy.onnx
    obs = fresh_observations(policy, 300, seed=1)
    plain = run_all(session(folder / "policy.onnx"), {"observation": obs})
    weighted_sess = session(folder / "policy_weights.onnx")
    with_weights = run_all(weighted_sess, {"observation": obs, **weights})
    for name, value in plain.items():
        np.testing.assert_allclose(with_weights[name], value, atol=1e-6)

    # adapter.onnx equals theta - lr * grad(meta.inner_loss) on fixed data, for two sizes of N
    generator = torch.Generator().manual_seed(0)
    lr = 0.37
    for count in (50, 3):
        data_obs = torch.from_numpy(fresh_observations(policy, count, seed=count))
        if policy.discrete:
            actions = torch.randint(0, policy.action_dim, (count,), generator=generator)
        else:
            actions = torch.randn(count, policy.action_dim, generator=generator)
        advantages = torch.randn(count, generator=generator)
        params = {n: p.detach().clone().requires_grad_(True) for n, p in policy.named_parameters()}
        batch = TaskBatch(data_obs, actions, torch.ones(count), torch.zeros(count), advantages)
        grads = torch.autograd.grad(inner_loss(policy, params, batch), list(params.values()))
        adapted = {n: (p - lr * g).detach() for (n, p), g in zip(params.items(), grads)}
        feeds = {**weights, "observations": data_obs.numpy(), "actions": actions.numpy(),
                 "advantages": advantages.numpy(), "inner_lr": np.asarray(lr, np.float32)}
        adapter = session(folder / "adapter.onnx")
        assert [i.shape[0] for i in adapter.get_inputs() if i.name in feeds and i.name in (
            "observations", "actions", "advantages")] == ["N", "N", "N"]
        got = run_all(adapter, feeds)
        assert set(got) == {f"new_{w['input_name']}" for w in manifest["weights"]}
        for w in manifest["weights"]:
            np.testing.assert_allclose(got[f"new_{w['input_name']}"], adapted[w["name"]].numpy(),
                                       rtol=0, atol=1e-5)

    # the adapted weights back through policy_weights.onnx equal the torch adapted policy
    new_weights = {w["input_name"]: got[f"new_{w['input_name']}"] for w in manifest["weights"]}
    after = run_all(weighted_sess, {"observation": obs, **new_weights})
    want = torch_reference(policy, obs, adapted)
    for name, value in want.items():
        if name == "action" and policy.discrete:
            np.testing.assert_array_equal(after[name], value)
        else:
            np.testing.assert_allclose(after[name], value, rtol=0, atol=1e-5)
    check = manifest["verification"]["adapter"]
    assert check["passed"] and max(check["max_abs_diff"].values()) <= 1e-5


# -- overwriting and failures -------------------------------------------------------------------
def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_existing_export_is_refused_without_force_and_replaced_with_it(runs, exported,
                                                                        tmp_path) -> None:
    folder = tmp_path / "again"
    shutil.copytree(exported["pointnav"], folder)
    before = snapshot(folder)
    result = invoke("export", runs["pointnav"], "-o", folder)
    assert_one_line_error(result, "already holds")
    assert "--force" in result.output
    assert snapshot(folder) == before

    result = invoke("export", runs["pointnav"], "-o", folder, "--force")
    assert result.exit_code == 0, result.output
    after = snapshot(folder)
    assert set(after) == {"policy.onnx", "policy.json"}  # stale adapter / int8 files dropped
    manifest = json.loads(after["policy.json"])
    assert set(manifest["files"]) == {"policy.onnx"}
    assert manifest["adapter"] is None and manifest["weights"] is None
    assert manifest["quantization"] is None
    assert manifest["files"]["policy.onnx"]["sha256"] == hashlib.sha256(
        after["policy.onnx"]).hexdigest()


def test_failed_verification_writes_nothing_and_keeps_what_was_there(runs, exported, tmp_path,
                                                                     monkeypatch) -> None:
    folder = tmp_path / "kept"
    shutil.copytree(exported["gridnav"], folder)
    before = snapshot(folder)
    real = verify_export.torch_outputs

    def wrong(policy, observations, params=None, noise=None):
        outputs = real(policy, observations, params, noise)
        outputs["logits"] = outputs["logits"] + 1e-3
        return outputs

    monkeypatch.setattr(verify_export, "torch_outputs", wrong)
    result = invoke("export", runs["gridnav"], "-o", folder, "--force")
    assert_one_line_error(result, "verification of policy.onnx failed")
    assert snapshot(folder) == before  # nothing replaced, no staging folder left behind

    fresh = tmp_path / "new" / "export"
    result = invoke("export", runs["gridnav"], "-o", fresh)
    assert result.exit_code != 0 and not fresh.exists() and not fresh.parent.exists()


def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(runs["gridnav"], corrupt)
    (corrupt / "checkpoint.pt").write_bytes(b"not a checkpoint")
    out = tmp_path / "out"
    cases = [
        ([tmp_path / "missing"], "neither a training run nor an adapted policy"),
        ([empty], "neither a training run nor an adapted policy"),
        ([corrupt], "corrupt"),
        ([runs["gridnav"], "--opset", 99], "--opset"),
        ([runs["gridnav"], "--opset", 12, "--with-adapter"], "--opset 15"),
        ([runs["gridnav"], "--opset", 9, "--quantize", "int8"], "--opset 11"),
        ([runs["gridnav"], "--quantize", "int4"], "--quantize"),
        ([runs["gridnav"], "--action", "best"], "--action"),
    ]
    for args, message in cases:
        assert_one_line_error(invoke("export", *args, "-o", out), message)
    assert not out.exists()


def test_default_output_folder_and_cli_limits(runs) -> None:
    source = load_policy_source(runs["gridnav"])
    assert export.default_output_dir(source) == Path("exports") / "gridnav-gridnav"
    # measured (docs/performance.md): a gradient policy samples discrete actions, plays the
    # mean of a Gaussian; rl2's default is greedy (tests/test_recurrent_export.py)
    assert export.default_action_mode(source) == "sampled"
    assert export.default_action_mode(load_policy_source(runs["pointnav"])) == "greedy"
    # the standalone reference loader keeps its own copy of the names (it imports no gameadapt)
    assert (onnxpolicy.FORMAT, onnxpolicy.MANIFEST, onnxpolicy.POLICY_FILE,
            onnxpolicy.WEIGHTS_POLICY_FILE, onnxpolicy.ADAPTER_FILE, onnxpolicy.WEIGHTS_FILE) == (
        formats.FORMAT, formats.MANIFEST_FILE, formats.POLICY_FILE, formats.WEIGHTS_POLICY_FILE,
        formats.ADAPTER_FILE, formats.WEIGHTS_FILE)


# -- the sampled action (--action sampled) -------------------------------------------------------
@pytest.fixture(scope="module")
def sampled(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """gridnav: --action sampled --with-adapter --opset 15; pointnav: --action sampled --quantize."""
    base = tmp_path_factory.mktemp("sampled")
    folders = {game: base / game for game in ("gridnav", "pointnav")}
    for game, extra in (("gridnav", ["--with-adapter", "--opset", 15]),
                        ("pointnav", ["--quantize", "int8"])):
        result = invoke("export", runs[game], "-o", folders[game], "--action", "sampled", *extra)
        assert result.exit_code == 0, result.output
        assert "action: sampled" in result.output and "passed" in result.output
    return folders


def noise_formula(policy: Any, want: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
    """The sampled action written here in float64: Gumbel-max or Box-Muller, then the env map."""
    u = np.clip(noise.astype(np.float64), 1e-7, 1 - 1e-7)
    if policy.discrete:
        return (want["logits"].astype(np.float64) - np.log(-np.log(u))).argmax(-1)
    half = u.shape[-1] // 2
    z = np.sqrt(-2 * np.log(u[:, :half])) * np.cos(2 * np.pi * u[:, half:])
    a = want["mean"] + np.exp(want["log_std"].astype(np.float64)) * z
    low, high = policy.action_low.numpy(), policy.action_high.numpy()
    return np.clip(policy.action_center.numpy() + policy.action_scale.numpy() * a, low, high)


@pytest.mark.parametrize("game", ["pointnav", "gridnav"])
def test_a_sampled_export_draws_its_action_from_the_noise(runs, sampled, game) -> None:
    folder = sampled[game]
    manifest = manifest_of(folder)
    policy = load_policy_source(runs[game]).policy
    size = policy.action_dim if policy.discrete else 2 * policy.action_dim
    assert manifest["action_mode"] == "sampled" and "noise" in manifest["action_semantics"]
    assert [i["name"] for i in manifest["inputs"]] == ["observation", "noise"]
    assert manifest["noise"]["shape"] == ["batch", size]
    assert manifest["verification"]["action"] == "sampled" and manifest["verification"]["passed"]
    sess = session(folder / "policy.onnx")
    assert [i.name for i in sess.get_inputs()] == ["observation", "noise"]
    ops = {node.op_type for node in onnx.load(str(folder / "policy.onnx")).graph.node}
    assert not {"RandomUniform", "RandomNormal", "RandomUniformLike", "Multinomial"} & ops
    obs = fresh_observations(policy, 400, seed=2)
    noise = np.random.default_rng(5).random((400, size)).astype(np.float32)
    noise[:2] = [[0.0] * size, [1.0] * size]  # clamped inside the graph: finite actions
    got = run_all(sess, {"observation": obs, "noise": noise})
    want = torch_reference(policy, obs)
    for name in want:
        if name != "action":
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-5)
    if policy.discrete:
        assert (got["action"] == noise_formula(policy, want, noise)).mean() > 0.99
        weights_sess = session(folder / "policy_weights.onnx")  # the adapter's: greedy
        assert "noise" not in [i.name for i in weights_sess.get_inputs()]
        greedy = run_all(weights_sess, {"observation": obs, **read_weights(folder, manifest)})
        np.testing.assert_array_equal(greedy["action"], want["action"])
    else:
        np.testing.assert_allclose(got["action"], noise_formula(policy, want, noise), atol=1e-5)
        assert manifest["quantization"]["passed"]
        int8 = run_all(session(folder / "policy.int8.onnx"), {"observation": obs, "noise": noise})
        np.testing.assert_allclose(int8["action"], got["action"], atol=0.05)


def test_sampled_discrete_actions_follow_the_softmax(runs, tmp_path) -> None:
    source = load_policy_source(runs["gridnav"])
    with torch.no_grad():  # the same distribution at every observation: known probabilities
        source.policy.head.weight.zero_()
        source.policy.head.bias.copy_(torch.tensor([1.0, -0.5, 0.0, 0.7]))
    export.export_policy(source, tmp_path / "rigged", action="sampled")
    count = 20000
    rng = np.random.default_rng(99)
    got = run_all(session(tmp_path / "rigged" / "policy.onnx"),
                  {"observation": fresh_observations(source.policy, count, seed=4),
                   "noise": rng.random((count, 4)).astype(np.float32)})
    bias = np.array([1.0, -0.5, 0.0, 0.7])
    np.testing.assert_allclose(np.bincount(got["action"], minlength=4) / count,
                               np.exp(bias) / np.exp(bias).sum(), atol=0.015)


def test_every_graph_describes_itself_and_is_stamped_with_its_lowest_ir(exported) -> None:
    """Issue 16, items 1 and 3: metadata_props, graph names and IR versions of every file
    (int8 included) against policy.json."""
    assert assert_self_describing(exported["pointnav"]) == [
        "adapter.onnx", "policy.int8.onnx", "policy.onnx", "policy_weights.onnx"]
    assert len(assert_self_describing(exported["gridnav"])) == 3
