"""The context export (task inference): ``policy.onnx`` on ``[observation, z]`` and
``encoder.onnx``, the O(1) update of the task posterior's two running sums.

Tiny context runs of gridnav (discrete) and pointnav (continuous) are trained in-process,
with ``z_update`` ``step`` (z made from the posterior before every step, the default) and
``episode`` (z made at each episode's start, held), and exported at opsets 15 and 18, greedy
and sampled, latent mean and sample. ONNX Runtime is checked against a torch reference
written here (the networks' own layers, the product of Gaussians by hand) over whole trials
with its own sums fed back, against the engine's batch posterior and
``ContextPolicy.unroll`` over a trial that crosses episode boundaries, and ``gameadapt play``
and the reference loader against both; duel covers the multi-agent cases (the learner
alone, and a shared policy driving both agents).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from gameadapt.errors import GameadaptError
from gameadapt.host.registry import get_registry
from gameadapt.learn.posterior import episode_start_sums, step_sums
from gameadapt.learn.trials import sample_trials
from gameadapt.learn.vector import make_batched_game
from gameadapt.ship import context_verify, formats, onnxpolicy
from gameadapt.ship.export import (
    check_trial_family,
    default_action_mode,
    default_latent_mode,
    export_policy,
)
from gameadapt.ship.onnx_export import export_context_graphs
from gameadapt.ship.onnxpolicy import ContextMemory, OnnxPolicy, PolicyLoadError
from gameadapt.ship.play import make_play_env, play
from gameadapt.ship.sources import load_policy_source
from gameadapt.train.runs import RunDir
from gameadapt.train.session import make_config, start_run
from gameadapt.train.trainer import train
from selfdescribing import assert_self_describing
from test_recurrent_export import assert_close as assert_recurrent_close
from test_recurrent_export import assert_one_line_error, formula_action, invoke

pytestmark = pytest.mark.slow  # trains, exports ONNX files and runs ONNX Runtime

LATENT = 3
OPTIONS = {"latent_size": LATENT, "hidden_sizes": [32, 32], "encoder_sizes": [32, 32]}
EXPORTS = {  # (game, opset, action, latent, z_update)
    ("gridnav", 15, "greedy", "mean", "step"), ("gridnav", 18, "sampled", "sample", "step"),
    ("pointnav", 15, "sampled", "mean", "step"), ("pointnav", 18, "greedy", "sample", "step"),
    ("gridnav", 15, "greedy", "mean", "episode"), ("pointnav", 18, "greedy", "sample", "episode"),
}
Z_UPDATES = ("step", "episode")
ENCODER_INPUTS = ["observation", "action", "reward", "next_observation", "precision_sum",
                  "weighted_sum"]
ENCODER_OUTPUTS = ["precision_sum_out", "weighted_sum_out", "posterior_mean",
                   "posterior_variance"]
PLAIN_OPS = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Reciprocal", "Tanh", "Softplus",
             "Log", "Exp", "Greater", "Where", "Concat", "Split", "Slice", "Squeeze",
             "Unsqueeze", "Equal", "Cast", "Max", "Min", "Clip", "Shape", "Expand", "ArgMax",
             "Sqrt", "Cos", "Neg", "Constant", "Reshape", "Identity"}


def train_run(root: Path, game: str, share_policy: bool = False, z_update: str = "step"
              ) -> Path:
    """A one-iteration run (``-o z_update=...``)."""
    config = make_config({"game": game, "algorithm": "context", "iterations": 1,
                          "meta_batch": 2, "envs_per_task": 2, "device": "cpu",
                          "share_policy": share_policy,
                          "options": {**OPTIONS, "z_update": z_update}})
    run = RunDir(root / f"{game}{'-shared' if share_policy else ''}-{z_update}")
    train(start_run(config, run), run)
    return run.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("context-runs")
    return {(game, z_update): train_run(root, game, z_update=z_update)
            for game in ("gridnav", "pointnav") for z_update in Z_UPDATES}


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict[tuple[str, int, str, str, str], Path]:
    root = tmp_path_factory.mktemp("context-exports")
    made = {}
    for key in sorted(EXPORTS):
        game, opset, action, latent, z_update = key
        out = root / "-".join(map(str, key))
        export_policy(runs[game, z_update], out, opset=opset, action=action, latent=latent)
        made[key] = out
    return made


def session(path: Path | bytes) -> ort.InferenceSession:
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run_all(sess: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


# -- an independent torch reference: the networks' layers, the Gaussian product by hand ------
def torch_heads(policy: Any, obs: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    x = torch.cat([torch.as_tensor(obs), torch.as_tensor(z)], -1)
    with torch.no_grad():
        head, value = policy.actor(x), policy.critic(x)[:, 0]
    out = {"value": value.numpy()}
    if policy.discrete:
        out["logits"] = head.numpy()
    else:
        out["mean"] = head.numpy()
        out["log_std"] = policy.log_std.detach().expand_as(head).numpy()
    return out


def torch_encode(policy: Any, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
                 next_obs: np.ndarray, precision: np.ndarray, weighted: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """One transition added to the sums: ``σ² = softplus + 1e-4``, ``(1/σ², μ/σ²)``."""
    if policy.discrete:
        features = torch.nn.functional.one_hot(torch.as_tensor(action), policy.action_dim)
    else:
        clipped = torch.clamp(torch.as_tensor(action), policy.action_low, policy.action_high)
        features = (clipped - policy.action_center) / policy.action_scale
    x = torch.cat([torch.as_tensor(obs), features.float(), torch.as_tensor(reward)[:, None],
                   torch.as_tensor(next_obs)], -1)
    with torch.no_grad():
        raw = policy.encoder(x)
    mu, variance = raw[:, :LATENT], torch.nn.functional.softplus(raw[:, LATENT:]) + 1e-4
    new_precision = torch.as_tensor(precision) + 1.0 / variance
    new_weighted = torch.as_tensor(weighted) + mu / variance
    return {"precision_sum_out": new_precision.numpy(), "weighted_sum_out": new_weighted.numpy(),
            "posterior_mean": (new_weighted / new_precision).numpy(),
            "posterior_variance": (1.0 / new_precision).numpy()}


SCALED = ("value", "precision_sum_out", "weighted_sum_out", "posterior_mean")


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], discrete: bool,
                 scores: np.ndarray | None = None) -> None:
    """Within 1e-5, relative (x max(1, magnitude)) for the value and the sums."""
    assert_recurrent_close(got, want, discrete, scores, SCALED)


def decode(policy: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """A transition the engine recorded ([obs, features, reward, next_obs]) as encoder
    inputs: the index played, or the env action."""
    d, a = policy.obs_dim, policy.action_dim
    features = x[:, d:d + a]
    action = (features.argmax(-1).astype(np.int64) if policy.discrete else
              (policy.action_center.numpy() + policy.action_scale.numpy() * features
               ).astype(np.float32))
    return {"observation": x[:, :d], "action": action, "reward": x[:, d + a],
            "next_observation": x[:, d + a + 1:]}


def prior(batch: int = 1) -> dict[str, np.ndarray]:
    return {"precision_sum": np.ones((batch, LATENT), np.float32),
            "weighted_sum": np.zeros((batch, LATENT), np.float32)}


# -- manifest and graphs ---------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(EXPORTS))
def test_the_manifest_names_the_sums_z_and_the_call_sequence(runs, exported, key) -> None:
    game, opset, action, latent, z_update = key
    folder = exported[key]
    manifest = json.loads((folder / "policy.json").read_text())
    discrete = game == "gridnav"
    names = ["observation", "z"] + (["noise"] if action == "sampled" else [])
    outputs = (["action", "logits"] if discrete else ["action", "mean", "log_std"]) + ["value"]
    assert [i["name"] for i in manifest["inputs"]] == names
    assert [o["name"] for o in manifest["outputs"]] == outputs
    assert {i["name"]: i["shape"] for i in manifest["inputs"]}["z"] == ["batch", LATENT]
    policy_sess, encoder_sess = session(folder / "policy.onnx"), session(folder / "encoder.onnx")
    assert [i.name for i in policy_sess.get_inputs()] == names
    assert [o.name for o in policy_sess.get_outputs()] == outputs
    assert [i.name for i in encoder_sess.get_inputs()] == ENCODER_INPUTS
    assert [o.name for o in encoder_sess.get_outputs()] == ENCODER_OUTPUTS
    context = manifest["context"]
    assert context["latent_size"] == LATENT and context["latent_mode"] == latent
    assert context["z_update"] == z_update
    assert context["encoder_file"] == "encoder.onnx"
    assert context["policy_inputs"] == ["observation", "z"]
    assert [i["name"] for i in context["encoder_inputs"]] == ENCODER_INPUTS
    assert [o["name"] for o in context["encoder_outputs"]] == ENCODER_OUTPUTS
    action_input = context["encoder_inputs"][1]
    assert action_input["dtype"] == ("int64" if discrete else "float32")
    assert action_input["shape"] == (["batch"] if discrete else ["batch", 2])
    assert [(s["name"], s["output"], s["shape"], s["initial"]) for s in context["sums"]] == [
        ("precision_sum", "precision_sum_out", ["batch", LATENT], 1.0),
        ("weighted_sum", "weighted_sum_out", ["batch", LATENT], 0.0)]
    assert (context["reset"]["precision_sum"], context["reset"]["weighted_sum"]) == (1.0, 0.0)
    z = context["z"]
    if latent == "sample":
        assert z["formula"] == "z = posterior_mean + sqrt(posterior_variance) * e"
        assert z["e"]["shape"] == ["batch", LATENT] and "once per episode" in z["e"]["when"]
        assert ("same e" in z["e"]["when"]) == (z_update == "step")
    else:
        assert z["formula"] == "z = posterior_mean" and z["e"] is None
    level, episode, step = context["call_sequence"]
    assert level.startswith("new level") and episode.startswith("new episode")
    assert step.startswith("every step")
    assert "encoder.onnx(observation, action played, reward, next_observation" in step
    z_input = {i["name"]: i for i in manifest["inputs"]}["z"]["meaning"]
    if z_update == "step":  # made before every call, from the current posterior
        assert "before every policy.onnx call" in z["when"] and "before every step" in z_input
        assert step.startswith(f"every step: {z['formula']} ") and "z =" not in episode
        assert step.index("z =") < step.index("policy.onnx(")
    else:  # made at the episode's start, held
        assert "once per episode" in z["when"] and "held" in z["when"]
        assert "once per episode" in z_input
        assert episode.startswith(f"new episode: {z['formula']} ") and "z =" not in step
    policy = load_policy_source(runs[game, z_update]).policy
    assert manifest["value_scale"] == pytest.approx(float(policy.return_scale()), rel=1e-6)
    assert manifest["value_scale"] != 1.0  # trained: a running std of the returns
    assert "value_scale" in {o["name"]: o for o in manifest["outputs"]}["value"]["meaning"]
    assert manifest["action_mode"] == action and manifest["recurrent"] is None
    assert set(manifest["files"]) == {"policy.onnx", "encoder.onnx"}
    assert manifest["adapter"] is None and manifest["quantization"] is None
    assert manifest["provenance"]["algorithm"] == "context"
    assert set(manifest["latency_us"]["encoder"]) >= {"batch_1", "batch_64"}
    for name in ("policy.onnx", "encoder.onnx"):
        model = onnx.load(str(folder / name))
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= opset
        assert manifest["files"][name]["opset"] <= opset
        ops = {node.op_type for node in model.graph.node}
        assert ops <= PLAIN_OPS, ops - PLAIN_OPS
    encoder_ops = {node.op_type for node in onnx.load(str(folder / "encoder.onnx")).graph.node}
    assert ("Equal" in encoder_ops) == discrete and "Softplus" in encoder_ops
    check = manifest["verification"]
    assert check["kind"] == "context" and check["passed"] and check["latent"] == latent
    assert check["z_update"] == z_update
    assert check["incremental_vs_batch"]["steps"] == (check["steps"] if z_update == "step"
                                                      else 0)
    assert check["episodes"] >= 3 and check["steps"] >= 100 and check["sequence"]["passed"]
    assert check["sequence_batched"]["batch_size"] == check["steps"]
    assert check["incremental_vs_batch"]["passed"]
    assert check["incremental_vs_batch"]["episode_starts"] == check["episodes"]
    assert set(check["incremental_vs_batch"]["max_abs_diff"]) == {"precision_sum",
                                                                  "weighted_sum"}
    assert set(check["max_abs_diff"]) >= set(outputs + ENCODER_OUTPUTS + ["z"])
    scaled = set(check["scaled_tolerance"]["outputs"])
    assert all(value <= 1e-5 for name, value in check["max_abs_diff"].items()
               if name not in scaled)


def test_the_names_are_the_loaders_and_the_defaults_the_rule(runs) -> None:
    assert onnxpolicy.ENCODER_FILE == formats.ENCODER_FILE and "encoder.onnx" in formats.ALL_FILES
    assert onnxpolicy.SUM_NAMES == formats.SUM_NAMES
    assert list(formats.ENCODER_INPUTS) == ENCODER_INPUTS
    assert list(formats.ENCODER_OUTPUTS) == ENCODER_OUTPUTS
    grid, point = (load_policy_source(runs[game, "step"]) for game in ("gridnav", "pointnav"))
    assert default_action_mode(grid) == default_action_mode(point) == "sampled"
    assert default_latent_mode(grid) == default_latent_mode(point) == "mean"


# -- ONNX Runtime against torch --------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(EXPORTS))
def test_onnx_equals_torch_over_three_episodes_with_the_sums_carried(runs, exported,
                                                                    key) -> None:
    """Each side makes z from its own posterior by the export's rule (before every step,
    or at each episode's start and held); value * value_scale is torch's value *
    return_scale()."""
    game, _, action, latent, z_update = key
    policy = load_policy_source(runs[game, z_update]).policy
    assert policy.z_update == z_update
    value_scale = json.loads((exported[key] / "policy.json").read_text())["value_scale"]
    acting, encoding = (session(exported[key] / name) for name in ("policy.onnx", "encoder.onnx"))
    spec = get_registry().game(game)
    env = spec.make_env(spec.variant_space.default())
    rng = np.random.default_rng(3)
    torch_sums, onnx_sums = prior(), prior()
    torch_post = onnx_post = {"posterior_mean": np.zeros((1, LATENT), np.float32),
                              "posterior_variance": np.ones((1, LATENT), np.float32)}
    steps, held = 0, []
    for episode in range(3):
        obs, _ = env.reset(seed=10 + episode)
        e = rng.standard_normal((1, LATENT)).astype(np.float32) if latent == "sample" else 0.0
        done, zs = False, []
        while not done:
            if not zs or z_update == "step":  # z made now, each side from its own posterior
                torch_z = (torch_post["posterior_mean"]
                           + np.sqrt(torch_post["posterior_variance"]) * e).astype(np.float32)
                onnx_z = (onnx_post["posterior_mean"]
                          + np.sqrt(onnx_post["posterior_variance"]) * e).astype(np.float32)
                np.testing.assert_allclose(onnx_z, torch_z, rtol=0, atol=1e-5)
            if episode == 0 and not zs:  # the first step of a level acts on the prior
                assert np.array_equal(onnx_z, np.zeros((1, LATENT)) + e)
            zs.append(onnx_z)
            obs = np.asarray(obs, np.float32).reshape(1, -1)
            feeds = {"observation": obs, "z": onnx_z}
            noise = rng.random((1, 4)).astype(np.float32)
            if action == "sampled":
                feeds["noise"] = noise
            got = run_all(acting, feeds)
            want = torch_heads(policy, obs, torch_z)
            want["action"] = formula_action(policy, want, feeds.get("noise"))
            scores = None
            if policy.discrete:
                scores = want["logits"] - (np.log(-np.log(np.clip(noise, 1e-7, 1 - 1e-7)))
                                           if action == "sampled" else 0)
            assert_close(got, want, policy.discrete, scores)
            returns = want["value"] * float(policy.return_scale())  # the game's reward units
            np.testing.assert_allclose(got["value"] * value_scale, returns, rtol=0, atol=1e-5
                                       * value_scale * max(1.0, float(np.abs(want["value"]).max())))
            played = got["action"]
            next_obs, reward, terminated, truncated, _ = env.step(
                int(played[0]) if policy.discrete else played[0])
            step = {"observation": obs, "action": played,
                    "reward": np.full(1, reward, np.float32),
                    "next_observation": np.asarray(next_obs, np.float32).reshape(1, -1)}
            onnx_post = run_all(encoding, {**step, **onnx_sums})  # its own sums fed back
            torch_post = torch_encode(policy, *step.values(), *torch_sums.values())
            assert_close(onnx_post, torch_post, policy.discrete)
            onnx_sums = {name: onnx_post[f"{name}_out"] for name in ("precision_sum",
                                                                      "weighted_sum")}
            torch_sums = {name: torch_post[f"{name}_out"] for name in ("precision_sum",
                                                                        "weighted_sum")}
            obs, done, steps = next_obs, terminated or truncated, steps + 1
        held.append(len(zs) > 1 and all(np.array_equal(z, zs[0]) for z in zs))
    assert held == [z_update == "episode"] * 3  # held through the episode, or not
    assert steps > 3 and np.abs(onnx_sums["precision_sum"] - 1).min() > 1.0  # it took them in


@pytest.mark.parametrize("game, opset, z_update", [
    ("gridnav", 15, "step"), ("pointnav", 18, "step"), ("gridnav", 15, "episode"),
    ("pointnav", 18, "episode")])
def test_incremental_encoder_sums_equal_the_batch_posterior_and_unroll(runs, exported, game,
                                                                      opset, z_update) -> None:
    """encoder.onnx applied transition by transition to a trial the engine played equals
    the engine's batch posterior (``episode_start_sums``, ``step_sums``, a direct sum of
    the factors), and policy.onnx on the z it gives by the rule equals
    ``ContextPolicy.unroll``."""
    source = load_policy_source(runs[game, z_update])
    policy, spec = source.policy, source.spec
    with contextlib.closing(make_batched_game(spec, [spec.variant_space.default()], 1)) as view:
        trials = sample_trials(view, policy, 3, seed=5, latent="sample")
    inputs, mask, noise = trials.inputs[:, 0], trials.mask[:, 0], trials.noise[:, 0]
    episode = trials.episode[:, None].expand_as(mask)
    with torch.no_grad():
        dist, _, _ = policy.unroll(inputs, mask, episode, noise)
        factors = policy.factors(inputs)
        starts = episode_start_sums(factors, mask, episode, 3)
        before = step_sums(factors, mask)
    key = next(k for k in sorted(exported) if k[:2] == (game, opset) and k[4] == z_update)
    acting, encoding = (session(exported[key] / name) for name in ("policy.onnx", "encoder.onnx"))
    sums, post = prior(), None
    live = torch.nonzero(mask[:, 0] > 0).flatten().tolist()
    first = {int(trials.episode[t]): t for t in reversed(live)}
    assert sorted(first) == [0, 1, 2]  # the trial crosses two episode boundaries
    for t in live:
        k = int(trials.episode[t])
        for index, name in enumerate(("precision_sum", "weighted_sum")):  # the sums so far
            np.testing.assert_allclose(sums[name], before[index][t].numpy(), rtol=1e-5,
                                       atol=1e-5, err_msg=f"{name} before step {t}")
            if first[k] == t:  # an episode starts: against the episode-start form too
                np.testing.assert_allclose(sums[name], starts[index][k].numpy(), rtol=1e-5,
                                           atol=1e-5, err_msg=f"{name} at episode {k}")
        if first[k] == t or z_update == "step":
            mean = np.zeros((1, LATENT)) if post is None else post["posterior_mean"]
            variance = np.ones((1, LATENT)) if post is None else post["posterior_variance"]
            z = (mean + np.sqrt(variance) * noise[k].numpy()).astype(np.float32)
        x = inputs[t].numpy()
        got = run_all(acting, {"observation": x[:, :policy.obs_dim], "z": z, **(
            {"noise": np.full((1, 4), 0.5, np.float32)} if key[2] == "sampled" else {})})
        np.testing.assert_allclose(got["logits" if policy.discrete else "mean"],
                                   dist[0][t].numpy(), rtol=0, atol=1e-5, err_msg=str(t))
        post = run_all(encoding, {**decode(policy, x), **sums})
        sums = {name: post[f"{name}_out"] for name in ("precision_sum", "weighted_sum")}
    total = [1.0 + (factors[0] * mask[..., None]).sum(0), (factors[1] * mask[..., None]).sum(0)]
    for name, want in zip(("precision_sum", "weighted_sum"), total):
        np.testing.assert_allclose(sums[name], want.numpy(), rtol=1e-5, atol=1e-5)


def test_the_graphs_match_at_extreme_factors_and_any_batch_size(runs) -> None:
    """Encoder weights scaled so factor variances span 1e-4 to over 20 (softplus on both of
    its branches), actions out of bounds (the clip), batch 1 and 300; opset 15."""
    policy = load_policy_source(runs["pointnav", "step"]).policy
    with torch.no_grad():
        policy.encoder[-1].weight.mul_(300.0)
        policy.encoder[-1].bias.uniform_(-20.0, 20.0)
    acting, encoding = (session(graph.to_bytes()) for graph in export_context_graphs(policy, 15))
    rng = np.random.default_rng(0)
    count = 300
    obs = rng.normal(0.0, 1.0, (count, 2)).astype(np.float32)
    feeds = {"observation": obs, "action": rng.uniform(-0.3, 0.3, (count, 2)).astype(np.float32),
             "reward": rng.normal(0, 5, count).astype(np.float32),
             "next_observation": obs[::-1].copy(),
             "precision_sum": np.exp(rng.uniform(0, 8, (count, LATENT))).astype(np.float32),
             "weighted_sum": rng.normal(0, 10, (count, LATENT)).astype(np.float32)}
    for size in (count, 1):
        part = {name: value[:size] for name, value in feeds.items()}
        assert_close(run_all(encoding, part), torch_encode(policy, *part.values()), False)
    clipped = {**feeds, "action": np.clip(feeds["action"], -0.1, 0.1)}
    np.testing.assert_array_equal(run_all(encoding, feeds)["precision_sum_out"],
                                  run_all(encoding, clipped)["precision_sum_out"])
    zeros = np.zeros((count, LATENT), np.float32)
    precision = torch_encode(policy, *list(feeds.values())[:4], zeros, zeros)["precision_sum_out"]
    assert precision.max() > 1e3 and precision.min() < 0.05  # softplus's two branches (> 20)
    z = rng.normal(0, 3, (count, LATENT)).astype(np.float32)
    got = run_all(acting, {"observation": obs, "z": z})
    want = torch_heads(policy, obs, z)
    want["action"] = formula_action(policy, want, None)
    assert_close(got, want, False)


def test_a_failed_check_writes_nothing(runs, tmp_path, monkeypatch) -> None:
    real = context_verify.reference_encoder

    def wrong(*args: Any) -> dict[str, torch.Tensor]:
        out = real(*args)
        return {**out, "posterior_mean": out["posterior_mean"] + 1e-3}

    monkeypatch.setattr(context_verify, "reference_encoder", wrong)
    with pytest.raises(GameadaptError, match="verification of policy.onnx and encoder.onnx "
                                             "failed: output .* differs from PyTorch.*nothing "
                                             "was written"):
        export_policy(runs["gridnav", "step"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- play and the reference loader -----------------------------------------------------------
@pytest.mark.parametrize("z_update", Z_UPDATES)
def test_play_prints_returns_and_carries_the_posterior(runs, exported, monkeypatch,
                                                       z_update) -> None:
    folder = exported["gridnav", 15, "greedy", "mean", z_update]
    policy = OnnxPolicy.load(folder)
    spec = get_registry().game("gridnav")
    lines: list[str] = []
    fed: list[dict[str, np.ndarray]] = []  # z at every step
    encoded: list[dict[str, np.ndarray]] = []  # every encoder.onnx call's inputs
    real_outputs, real_encode = policy.outputs, policy.encode

    def spy(obs, memory=None, **kwargs):
        fed.append({"z": memory.feeds()["z"].copy()})
        return real_outputs(obs, memory, **kwargs)

    def spy_encode(feeds):
        encoded.append({name: np.array(value) for name, value in feeds.items()})
        return real_encode(feeds)

    monkeypatch.setattr(policy, "outputs", spy)
    monkeypatch.setattr(policy, "encode", spy_encode)
    episodes = play(policy, spec, policy.variant, episodes=3, seed=4, echo=lines.append)
    monkeypatch.undo()
    made = "every step" if z_update == "step" else "each episode's start"
    assert f"posterior carried across the episodes, latent mean, z made at {made}" in lines[0]
    assert [f"episode {i}: return" in line for i, line in zip((1, 2, 3), lines[1:4])] == [True] * 3
    assert lines[4].startswith("mean return over 3 episodes")
    first = len(episodes[0].actions)  # the first step of episode 2
    assert len(encoded) == len(fed) == sum(len(e.actions) for e in episodes)
    assert not fed[0]["z"].any()  # the first step of the level acts on the prior's mean
    starts = np.cumsum([0] + [len(e.actions) for e in episodes[:-1]])
    for t, z in enumerate(fed):  # the posterior mean of the sums before this step, or
        made_at = t if z_update == "step" else int(starts[starts <= t].max())  # its episode's
        sums = encoded[made_at]
        np.testing.assert_allclose(z["z"], sums["weighted_sum"] / sums["precision_sum"],
                                   rtol=1e-5, atol=1e-6, err_msg=f"z at step {t}")
    held = np.array_equal(fed[first - 1]["z"], fed[0]["z"])
    assert held == (z_update == "episode")  # z held through an episode, or made every step
    assert encoded[0]["precision_sum"].tolist() == [[1.0] * LATENT]  # a new level: the prior
    assert encoded[first]["action"].tolist() == [episodes[1].actions[0]]
    source = load_policy_source(runs["gridnav", z_update])
    torch_policy = source.policy
    steps = encoded[:first]  # episode 1's transitions, summed by the engine
    transitions = torch_policy.transition(
        torch.as_tensor(np.concatenate([s["observation"] for s in steps])),
        torch.as_tensor(np.concatenate([s["action"] for s in steps])),
        torch.as_tensor(np.concatenate([s["reward"] for s in steps])),
        torch.as_tensor(np.concatenate([s["next_observation"] for s in steps])))
    with torch.no_grad():
        precision, weighted = (terms.sum(0) for terms in torch_policy.factors(transitions))
    carried = encoded[first]  # what the memory held at the start of episode 2
    np.testing.assert_allclose(carried["precision_sum"][0], 1.0 + precision.numpy(), rtol=1e-5)
    np.testing.assert_allclose(carried["weighted_sum"][0], weighted.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(carried["precision_sum"] - 1.0).min() > 1.0  # not the prior any more
    np.testing.assert_allclose(fed[first]["z"][0], (weighted / (1.0 + precision)).numpy(),
                               rtol=1e-4, atol=1e-6)  # episode 2's z: the posterior mean
    assert np.abs(fed[first]["z"]).max() > 0
    for index in (0, len(encoded) - 1):  # the observations really are the step's
        assert encoded[index]["observation"].shape == (1, 9)
    assert np.array_equal(encoded[1]["observation"], encoded[0]["next_observation"])


def test_play_cli_replays_a_sampled_context_export(exported) -> None:
    folder = exported["pointnav", 15, "sampled", "mean", "step"]
    first = invoke("play", folder, "--episodes", 3, "--seed", 1)
    second = invoke("play", folder, "--episodes", 3, "--seed", 1)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout and "episode 3: return" in first.stdout
    assert "sampled actions, posterior carried across the episodes" in first.stdout
    sampled_z = invoke("play", exported["gridnav", 18, "sampled", "sample", "step"],
                       "--episodes", 2)
    assert sampled_z.exit_code == 0 and "latent sample" in sampled_z.stdout, sampled_z.output


def test_the_loader_context_memory_api(exported) -> None:
    policy = OnnxPolicy.load(exported["gridnav", 18, "sampled", "sample", "step"], seed=0)
    assert policy.context and policy.has_memory and not policy.recurrent
    assert policy.latent_mode == "sample" and policy.takes_noise and policy.z_update == "step"
    memory = policy.new_level(batch=2)
    assert isinstance(memory, ContextMemory) and memory.batch == 2
    assert memory.precision_sum.tolist() == [[1.0] * LATENT] * 2 and not memory.weighted_sum.any()
    normal = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -2.0]], np.float32)
    memory.new_episode(normal=normal)  # at the prior: z = 0 + 1 * normal
    np.testing.assert_array_equal(memory.z, normal)
    obs = np.random.default_rng(0).random((2, 9)).astype(np.float32)
    actions = policy.act(obs, memory)
    assert memory.action.tolist() == actions.tolist() and memory.observation.shape == (2, 9)
    with pytest.raises(PolicyLoadError, match="outcome was not reported"):
        policy.act(obs, memory)
    with pytest.raises(PolicyLoadError, match="next observation"):
        memory.reward([1.0, 0.0])
    memory.reward([1.0, 0.0], obs[::-1])
    assert (memory.precision_sum > 1.0).all() and memory.observation is None
    np.testing.assert_allclose(memory.posterior_variance, 1.0 / memory.precision_sum, rtol=1e-6)
    np.testing.assert_allclose(memory.posterior_mean, memory.weighted_sum / memory.precision_sum,
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(PolicyLoadError, match="no step in flight"):
        memory.reward(0.0, obs)
    memory.new_episode(normal=normal)
    np.testing.assert_allclose(memory.z, memory.posterior_mean
                               + np.sqrt(memory.posterior_variance) * normal, rtol=1e-6)
    mean_policy = OnnxPolicy.load(exported["gridnav", 15, "greedy", "mean", "step"])
    level = mean_policy.new_level()
    level.new_episode()
    assert not level.z.any()  # latent mean at a new level: the prior's mean
    with pytest.raises(PolicyLoadError, match="pass its memory"):
        policy.act(obs)
    with pytest.raises(PolicyLoadError, match="holds 2 rows"):
        policy.act(obs[:1], memory)
    for call in (policy.load_weights, lambda: policy.act_with({}, obs[0]),
                 lambda: policy.adapt(obs, [0, 0], [1.0, 1.0])):
        with pytest.raises(PolicyLoadError, match="context export.*no adapter"):
            call()


@pytest.mark.parametrize("z_update", Z_UPDATES)
def test_the_loader_memory_makes_z_by_the_rule(exported, tmp_path, z_update) -> None:
    """z_update "step": every call's z from the current posterior with the episode's e;
    "episode": the episode's z held. An unknown rule is a one-line error."""
    folder = exported["pointnav", 18, "greedy", "sample", z_update]
    policy = OnnxPolicy.load(folder, seed=1)
    assert policy.z_update == z_update
    memory = policy.new_level()
    rng = np.random.default_rng(4)
    obs = rng.uniform(-1, 1, (1, 2)).astype(np.float32)
    memory.new_episode()
    normal, start = memory.normal.copy(), memory.z.copy()
    np.testing.assert_array_equal(start, normal)  # the prior: 0 + 1 * e
    for _ in range(4):
        z = memory.feeds()["z"]
        want = (memory.posterior_mean + np.sqrt(memory.posterior_variance) * normal
                if z_update == "step" else start)
        np.testing.assert_allclose(z, want, rtol=1e-6, atol=1e-7)
        next_obs = (obs + policy.act(obs, memory)).astype(np.float32)
        memory.reward(1.0, next_obs)
        obs = next_obs
    assert np.array_equal(memory.normal, normal)  # e is the episode's, drawn once
    assert np.array_equal(memory.feeds()["z"], start) == (z_update == "episode")
    with pytest.raises(PolicyLoadError, match=r"normal must be standard normals shaped \[1, 3\]"):
        memory.new_episode(normal=[1.0, 2.0])
    memory.new_episode()  # a new e, z from the posterior so far
    assert not np.array_equal(memory.normal, normal)
    np.testing.assert_allclose(memory.z, memory.posterior_mean + np.sqrt(
        memory.posterior_variance) * memory.normal, rtol=1e-6, atol=1e-7)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "policy.json").read_text())
    manifest["context"]["z_update"] = "sometimes"
    (copy / "policy.json").write_text(json.dumps(manifest))
    with pytest.raises(PolicyLoadError, match="context.z_update must be 'step' or 'episode'"):
        OnnxPolicy.load(copy).new_level()
    del manifest["context"]["z_update"]  # a manifest from before the rule: "episode"
    (copy / "policy.json").write_text(json.dumps(manifest))
    assert OnnxPolicy.load(copy).z_update == "episode"


def test_a_run_recorded_before_z_update_keeps_the_episode_rule(runs, tmp_path) -> None:
    run = tmp_path / "old"
    shutil.copytree(runs["gridnav", "step"], run)
    config = json.loads((run / "config.json").read_text())
    del config["algorithm_config"]["z_update"]
    del config["train"]["options"]["z_update"]
    (run / "config.json").write_text(json.dumps(config))
    assert load_policy_source(run).policy.z_update == "episode"
    assert load_policy_source(runs["gridnav", "step"]).policy.z_update == "step"


def test_a_two_row_memory_equals_two_one_row_memories(exported) -> None:
    policy = OnnxPolicy.load(exported["pointnav", 18, "greedy", "sample", "step"])
    rng = np.random.default_rng(2)
    both, rows = policy.new_level(batch=2), [policy.new_level(), policy.new_level()]
    normal = rng.standard_normal((2, LATENT)).astype(np.float32)
    obs = rng.uniform(-1, 1, (2, 2)).astype(np.float32)
    for episode in range(2):
        both.new_episode(normal=normal)
        for row, memory in enumerate(rows):
            memory.new_episode(normal=normal[row:row + 1])
        for _ in range(5):
            actions = policy.act(obs, both)
            single = [policy.act(obs[row], memory) for row, memory in enumerate(rows)]
            np.testing.assert_allclose(actions, np.stack(single), rtol=0, atol=1e-6)
            next_obs = (obs + actions).astype(np.float32)
            both.reward([1.0, -1.0], next_obs)
            for row, memory in enumerate(rows):
                memory.reward([1.0, -1.0][row], next_obs[row])
            obs = next_obs
    stacked = np.concatenate([memory.precision_sum for memory in rows])
    np.testing.assert_allclose(both.precision_sum, stacked, rtol=1e-6)


@pytest.mark.parametrize("share_policy", [False, True])
def test_duel_exports_play_with_a_posterior_per_agent(tmp_path, share_policy) -> None:
    run = train_run(tmp_path, "duel", share_policy)
    export_policy(run, tmp_path / "export", action="sampled", opset=15)
    policy = OnnxPolicy.load(tmp_path / "export")
    assert policy.context and policy.manifest["agents"] == (
        ["attacker", "defender"] if share_policy else ["attacker"])
    spec = get_registry().game("duel")
    lines: list[str] = []
    played = play(policy, spec, spec.variant_space.default(), episodes=2, seed=0,
                  echo=lines.append)
    assert len(played) == 2 and "episode 2: return" in lines[2] and "posterior" in lines[0]
    if not share_policy:
        return
    env = make_play_env(policy, spec, spec.variant_space.default(), None, seed=0)
    other = env.parallel_env.drivers.memories["defender"]  # the learner's memory is ours
    assert isinstance(other, ContextMemory)
    memory = policy.new_level()
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        memory.new_episode()
        assert (episode == 0) == bool((other.precision_sum == 1.0).all())  # prior: level start
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(policy.act(obs, memory)))
            memory.reward(reward, obs)
            done = terminated or truncated
        assert (other.precision_sum > 1.0).all() and other.observation is None


# -- one-line errors ---------------------------------------------------------------------------
def test_what_a_context_run_cannot_do_is_one_line(runs, exported, tmp_path) -> None:
    run = runs["gridnav", "step"]
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "a", "--with-adapter"),
                          "--with-adapter", "task posterior", "nothing to adapt")
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "b", "--quantize", "int8"),
                          "--quantize int8", "context policy")
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "c", "--latent", "best"),
                          "--latent")
    assert not any((tmp_path / name).exists() for name in "abc")
    result = invoke("adapt", run, "-v", "level.seed=12000", "-o", tmp_path / "d")
    assert_one_line_error(result, "task posterior", "nothing to adapt", "exports/README.md")
    assert not (tmp_path / "d").exists()
    assert_one_line_error(invoke("play", exported["gridnav", 15, "greedy", "mean", "step"],
                                 "--adapt-online"), "context export", "--adapt-online")
    gradient = SimpleNamespace(session=SimpleNamespace(algorithm=SimpleNamespace(
        name="maml", family="gradient")), context=False, recurrent=False, adapts_in_play=False)
    with pytest.raises(GameadaptError, match="--latent applies to a context-family export"):
        check_trial_family(gradient, None, False, "mean")  # type: ignore[arg-type]


def test_export_prints_the_context_verification(runs, tmp_path) -> None:
    result = invoke("export", runs["pointnav", "step"], "-o", tmp_path / "out", "--opset", 15,
                    "--latent", "sample")
    assert result.exit_code == 0, result.output
    assert "encoder.onnx" in result.output and "context" in result.output
    assert ("latent: sample (z = posterior_mean + sqrt(posterior_variance) * e, before every "
            "step;") in result.output
    assert "encoder.onnx step by step vs the batch posterior" in result.output
    assert "episode starts, before " in result.output  # z_update step: the per-step sums
    assert "posterior's sums carried (latent sample, z_update step)" in result.output
    assert "action: sampled" in result.output  # continuous: rl2's rule for now
    manifest = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert manifest["files"]["encoder.onnx"]["opset"] == 15


def test_both_context_graphs_describe_themselves(exported) -> None:
    """Issue 16, items 1 and 3: the latent size and the rest in metadata_props, lowest IR."""
    for folder in exported.values():
        assert assert_self_describing(folder) == ["encoder.onnx", "policy.onnx"]
