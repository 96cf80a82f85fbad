"""The recurrent export (``rl2``): ``policy.onnx`` with the state as an input and an output.

Tiny rl2 runs of gridnav (discrete) and pointnav (continuous) are trained in-process and
exported at opsets 15 and 18, greedy and sampled. ONNX Runtime is checked against PyTorch's
own ``nn.GRUCell`` over whole trials with its own state fed back, against
``RecurrentPolicy.unroll`` over a trial that crosses an episode boundary, and the sampled
graphs against the noise formulas (and, statistically, against the distribution).
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.host.registry import get_registry
from gameadapt.learn.trials import sample_trials
from gameadapt.learn.vector import make_batched_game
from gameadapt.ship.export import export_policy
from gameadapt.ship.onnxpolicy import OnnxPolicy, PolicyLoadError
from gameadapt.ship.play import make_play_env, play
from gameadapt.ship.sources import load_policy_source
from gameadapt.train.runs import RunDir
from gameadapt.train.session import make_config, start_run
from gameadapt.train.trainer import train
from selfdescribing import assert_self_describing

pytestmark = pytest.mark.slow  # trains, exports ONNX files and runs ONNX Runtime

HIDDEN = 32
EXPORTS = {  # (game, opset, action)
    ("gridnav", 15, "greedy"), ("gridnav", 18, "sampled"),
    ("pointnav", 15, "sampled"), ("pointnav", 18, "greedy"),
}


def test_the_default_action_is_the_measured_one(runs: dict[str, Path]) -> None:
    """rl2 plays gridnav greedily, samples pointnav (docs/performance.md)."""
    from gameadapt.ship.export import default_action_mode
    from gameadapt.ship.sources import load_policy_source

    assert default_action_mode(load_policy_source(runs["gridnav"])) == "greedy"
    assert default_action_mode(load_policy_source(runs["pointnav"])) == "sampled"


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.strip().splitlines()[-1] == errors[0], result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rl2-runs")
    made = {}
    for game in ("gridnav", "pointnav"):
        config = make_config({"game": game, "algorithm": "rl2", "iterations": 1,
                              "meta_batch": 2, "envs_per_task": 2, "device": "cpu",
                              "options": {"hidden_size": HIDDEN}})
        run = RunDir(root / game)
        train(start_run(config, run), run)
        made[game] = run.path
    return made


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory) -> dict[tuple[str, int, str], Path]:
    root = tmp_path_factory.mktemp("rl2-exports")
    made = {}
    for game, opset, action in sorted(EXPORTS):
        out = root / f"{game}-{opset}-{action}"
        export_policy(runs[game], out, opset=opset, action=action)
        made[game, opset, action] = out
    return made


def session(folder: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])


def run_all(sess: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


# -- an independent torch reference: nn.GRUCell's own forward ------------------------------
def torch_step(policy: Any, obs: np.ndarray, prev_action: np.ndarray, prev_reward: np.ndarray,
               start: np.ndarray, state: torch.Tensor) -> tuple[dict[str, np.ndarray],
                                                                torch.Tensor]:
    """One step, written here: one-hot (zeros for -1) or (a - center) / scale features."""
    if policy.discrete:
        index = torch.as_tensor(prev_action, dtype=torch.long)
        features = torch.nn.functional.one_hot(index.clamp_min(0), policy.action_dim).float()
        features = features * (index >= 0).float().unsqueeze(-1)
    else:
        features = (torch.as_tensor(prev_action) - policy.action_center) / policy.action_scale
    x = torch.cat([torch.as_tensor(obs), features, torch.as_tensor(prev_reward)[:, None],
                   torch.as_tensor(start)[:, None]], -1)
    with torch.no_grad():
        new = policy.core(x, state)
        head = policy.head(new)
        value = policy.value_head(new)[:, 0]
    out = {"value": value.numpy(), "state_out": new.numpy()}
    if policy.discrete:
        out["logits"] = head.numpy()
    else:
        out["mean"] = head.numpy()
        out["log_std"] = policy.log_std.detach().expand_as(head).numpy()
    return out, new


def formula_action(policy: Any, out: dict[str, np.ndarray], noise: np.ndarray | None
                   ) -> np.ndarray:
    """The action the graph should output, computed here in numpy (float64)."""
    if policy.discrete:
        scores = out["logits"].astype(np.float64)
        if noise is not None:
            u = np.clip(noise.astype(np.float64), 1e-7, 1 - 1e-7)
            scores = scores - np.log(-np.log(u))
        return scores.argmax(-1)
    a = out["mean"].astype(np.float64)
    if noise is not None:
        u = np.clip(noise.astype(np.float64), 1e-7, 1 - 1e-7)
        half = u.shape[-1] // 2
        z = np.sqrt(-2 * np.log(u[:, :half])) * np.cos(2 * np.pi * u[:, half:])
        a = a + np.exp(out["log_std"].astype(np.float64)) * z
    center, scale = policy.action_center.numpy(), policy.action_scale.numpy()
    return np.clip(center + scale * a, policy.action_low.numpy(), policy.action_high.numpy())


def assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], discrete: bool,
                 scores: np.ndarray | None = None, scaled: tuple[str, ...] = ("value",)) -> None:
    """Within 1e-5 (x max(1, magnitude) for the outputs in ``scaled``); a discrete action
    may differ only where the two best scores tie within 1e-5."""
    for name, value in want.items():
        if name == "action" and discrete:
            ordered = np.sort(scores, -1)
            tie = ordered[:, -1] - ordered[:, -2] <= 1e-5
            assert ((got[name] == value) | tie).all(), name
            continue
        scale = max(1.0, float(np.abs(value).max())) if name in scaled else 1.0
        np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-5 * scale, err_msg=name)


# -- manifest -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(EXPORTS))
def test_the_manifest_names_the_state_and_the_reset_rule(exported, key) -> None:
    game, opset, action = key
    folder = exported[key]
    manifest = json.loads((folder / "policy.json").read_text())
    discrete = game == "gridnav"
    names = ["observation", "prev_action", "prev_reward", "episode_start", "state"]
    names += ["noise"] if action == "sampled" else []
    assert [i["name"] for i in manifest["inputs"]] == names
    outputs = ["action", "logits"] if discrete else ["action", "mean", "log_std"]
    assert [o["name"] for o in manifest["outputs"]] == outputs + ["value", "state_out"]
    value = {o["name"]: o for o in manifest["outputs"]}["value"]["meaning"]
    assert "value * value_scale is in the game's reward units" in value
    assert isinstance(manifest["value_scale"], float) and manifest["value_scale"] > 0
    sess = session(folder)
    assert [i.name for i in sess.get_inputs()] == names
    assert [o.name for o in sess.get_outputs()] == outputs + ["value", "state_out"]
    by_name = {i["name"]: i for i in manifest["inputs"]}
    assert by_name["state"]["shape"] == ["batch", HIDDEN]
    assert by_name["prev_action"]["dtype"] == ("int64" if discrete else "float32")
    recurrent = manifest["recurrent"]
    assert recurrent["state_size"] == HIDDEN and recurrent["state_output"] == "state_out"
    reset = recurrent["reset"]
    assert reset["prev_action"] == (-1 if discrete else manifest["action_scaling"]["center"])
    assert (reset["prev_reward"], reset["episode_start"]) == (0.0, 1.0)
    assert any("state = outputs.state_out" in line for line in recurrent["call_sequence"])
    assert manifest["action_mode"] == action
    noise = manifest["noise"]
    if action == "sampled":
        assert noise["shape"] == ["batch", 4] and noise["input"] == "noise"  # n; 2 * act_dim
        assert noise["clamp"] == [1e-7, 1 - 1e-7]
    else:
        assert noise is None
    assert set(manifest["files"]) == {"policy.onnx"} and manifest["adapter"] is None
    assert manifest["quantization"] is None and manifest["provenance"]["algorithm"] == "rl2"
    model = onnx.load(str(folder / "policy.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= opset
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"GRU", "RandomUniform", "RandomNormal", "RandomUniformLike",
                      "Multinomial", "OneHot"}
    assert {"Sigmoid", "Tanh"} <= ops and ("Equal" in ops) == discrete
    check = manifest["verification"]
    assert check["kind"] == "recurrent" and check["passed"] and check["episodes"] >= 3
    assert check["steps"] >= 100 and check["sequence"]["passed"]
    assert check["sequence_batched"]["batch_size"] == check["steps"]
    assert set(check["max_abs_diff"]) == set(outputs + ["value", "state_out"])
    assert all(value <= 1e-5 for name, value in check["max_abs_diff"].items() if name != "value")


# -- ONNX Runtime against torch --------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(EXPORTS))
def test_onnx_equals_torch_over_three_episodes_with_the_state_carried(runs, exported,
                                                                     key) -> None:
    game, _, action = key
    policy = load_policy_source(runs[game]).policy
    sess = session(exported[key])
    value_scale = json.loads((exported[key] / "policy.json").read_text())["value_scale"]
    assert value_scale == pytest.approx(float(policy.return_scale()), rel=1e-6)
    assert value_scale != 1.0  # trained: a running std of the discounted returns
    spec = get_registry().game(game)
    env = spec.make_env(spec.variant_space.default())
    rng = np.random.default_rng(3)
    state, onnx_state = policy.initial_state(1), np.zeros((1, HIDDEN), np.float32)
    prev_action = (np.full(1, -1, np.int64) if policy.discrete
                   else policy.action_center.expand(1, 2).numpy().copy())
    prev_reward = np.zeros(1, np.float32)
    steps = 0
    for episode in range(3):
        obs, _ = env.reset(seed=10 + episode)
        start, done = np.ones(1, np.float32), False
        while not done:
            obs = np.asarray(obs, np.float32).reshape(1, -1)
            noise = rng.random((1, 4)).astype(np.float32)
            feeds = {"observation": obs, "prev_action": prev_action, "prev_reward": prev_reward,
                     "episode_start": start, "state": onnx_state}
            if action == "sampled":
                feeds["noise"] = noise
            got = run_all(sess, feeds)
            want, state = torch_step(policy, obs, prev_action, prev_reward, start, state)
            want["action"] = formula_action(policy, want, feeds.get("noise"))
            scores = None
            if policy.discrete:
                scores = want["logits"] - (np.log(-np.log(np.clip(noise, 1e-7, 1 - 1e-7)))
                                           if action == "sampled" else 0)
            assert_close(got, want, policy.discrete, scores)
            returns = want["value"] * float(policy.return_scale())  # the game's reward units
            np.testing.assert_allclose(got["value"] * value_scale, returns, rtol=0, atol=1e-5
                                       * value_scale * max(1.0, float(np.abs(want["value"]).max())))
            onnx_state = got["state_out"]  # ONNX Runtime's own state, fed back
            played = got["action"]
            obs, reward, terminated, truncated, _ = env.step(
                int(played[0]) if policy.discrete else played[0])
            prev_action, prev_reward = played, np.full(1, reward, np.float32)
            start, done, steps = np.zeros(1, np.float32), terminated or truncated, steps + 1
    assert steps > 3 and np.abs(state.numpy()).max() > 0


@pytest.mark.parametrize("game, opset", [("gridnav", 15), ("pointnav", 18)])
def test_the_exported_step_equals_unroll_over_a_trial(runs, exported, game, opset) -> None:
    source = load_policy_source(runs[game])
    policy, spec = source.policy, source.spec
    with contextlib.closing(make_batched_game(spec, [spec.variant_space.default()], 1)) as view:
        trials = sample_trials(view, policy, 2, seed=5)
    inputs, mask = trials.inputs[:, 0], trials.mask[:, 0]  # [S, 1, D], [S, 1]
    live = mask[:, 0] > 0
    assert set(trials.episode[live].tolist()) == {0, 1}  # the trial crosses an episode boundary
    with torch.no_grad():
        dist, values = policy.unroll(inputs, mask)
    d, a = policy.obs_dim, policy.action_dim
    sess = session(exported[game, opset, "greedy"])
    state = np.zeros((1, HIDDEN), np.float32)
    for t in torch.nonzero(live).flatten().tolist():
        x = inputs[t].numpy()
        features = x[:, d:d + a]
        if policy.discrete:
            prev = np.where(features.sum(-1) > 0, features.argmax(-1), -1).astype(np.int64)
        else:
            prev = (policy.action_center.numpy() + policy.action_scale.numpy() * features
                    ).astype(np.float32)
        got = run_all(sess, {"observation": x[:, :d], "prev_action": prev,
                             "prev_reward": x[:, -2], "episode_start": x[:, -1], "state": state})
        state = got["state_out"]
        np.testing.assert_allclose(got["logits" if policy.discrete else "mean"],
                                   dist[0][t].numpy(), rtol=0, atol=1e-5, err_msg=str(t))
        np.testing.assert_allclose(got["value"], values[t].numpy(), rtol=0,
                                   atol=1e-5 * max(1.0, float(values.abs().max())))


@pytest.mark.parametrize("game", ["gridnav", "pointnav"])
def test_no_previous_action_gives_zero_features(runs, exported, game) -> None:
    policy = load_policy_source(runs[game]).policy
    key = (game, 15, "greedy") if game == "gridnav" else (game, 18, "greedy")
    sess = session(exported[key])
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, policy.obs_dim)).astype(np.float32)
    state = rng.uniform(-1, 1, (5, HIDDEN)).astype(np.float32)
    none = (np.full(5, -1, np.int64) if policy.discrete
            else np.repeat(policy.action_center.expand(1, 2).numpy(), 5, 0))
    feeds = {"observation": obs, "prev_action": none, "prev_reward": np.zeros(5, np.float32),
             "episode_start": np.ones(5, np.float32), "state": state}
    got = run_all(sess, feeds)
    zeros = torch.cat([torch.as_tensor(obs), torch.zeros(5, policy.action_dim),
                       torch.zeros(5, 1), torch.ones(5, 1)], -1)
    with torch.no_grad():
        want = policy.core(zeros, torch.as_tensor(state)).numpy()
    np.testing.assert_allclose(got["state_out"], want, rtol=0, atol=1e-5)
    played = np.zeros(5, np.int64) if policy.discrete else np.full((5, 2), 0.05, np.float32)
    other = run_all(sess, {**feeds, "prev_action": played})
    assert np.abs(other["state_out"] - got["state_out"]).max() > 1e-6  # the features matter


# -- sampled graphs ---------------------------------------------------------------------------
def rigged_export(runs: dict[str, Path], game: str, folder: Path) -> tuple[Any, np.ndarray]:
    """A sampled export whose distribution is the same at every state: known probabilities."""
    source = load_policy_source(runs[game])
    policy = source.policy
    with torch.no_grad():
        policy.head.weight.zero_()
        if policy.discrete:
            policy.head.bias.copy_(torch.tensor([1.5, 0.0, -1.0, 0.5]))
        else:
            policy.head.bias.copy_(torch.tensor([0.3, -0.2]))
            policy.log_std.fill_(math.log(0.2))
    export_policy(source, folder, opset=15, action="sampled")
    return policy, policy.head.bias.detach().numpy()


@pytest.mark.parametrize("game", ["gridnav", "pointnav"])
def test_sampled_actions_follow_the_formula_and_the_distribution(runs, game, tmp_path) -> None:
    policy, bias = rigged_export(runs, game, tmp_path / "rigged")
    sess = session(tmp_path / "rigged")
    count = 20000
    rng = np.random.default_rng(1234)
    noise = rng.random((count, 4)).astype(np.float32)
    noise[:3] = [[0.0] * 4, [1.0] * 4, [0.5] * 4]  # the clamp keeps the extremes finite
    feeds = {"observation": rng.normal(size=(count, policy.obs_dim)).astype(np.float32),
             "prev_action": (rng.integers(-1, 4, count) if policy.discrete
                             else rng.uniform(-0.1, 0.1, (count, 2)).astype(np.float32)),
             "prev_reward": rng.normal(size=count).astype(np.float32),
             "episode_start": (rng.random(count) < 0.5).astype(np.float32),
             "state": rng.uniform(-1, 1, (count, HIDDEN)).astype(np.float32), "noise": noise}
    got = run_all(sess, feeds)
    assert np.isfinite(got["action"].astype(np.float64)).all()
    if policy.discrete:
        want = formula_action(policy, {"logits": got["logits"]}, noise)
        assert (got["action"] == want).mean() > 0.999  # float32 vs float64 near-ties only
        frequencies = np.bincount(got["action"], minlength=4) / count
        probabilities = np.exp(bias) / np.exp(bias).sum()
        np.testing.assert_allclose(frequencies, probabilities, atol=0.015)
    else:
        want = formula_action(policy, got, noise)
        np.testing.assert_allclose(got["action"], want, rtol=0, atol=1e-6)
        units = (got["action"][3:] - policy.action_center.numpy()) / policy.action_scale.numpy()
        np.testing.assert_allclose(units.mean(0), bias, atol=0.01)
        np.testing.assert_allclose(units.std(0), [0.2, 0.2], atol=0.01)


# -- play and the reference loader -----------------------------------------------------------
def test_play_carries_the_state_across_episodes(exported, monkeypatch) -> None:
    folder = exported["gridnav", 15, "greedy"]
    policy = OnnxPolicy.load(folder)
    spec = get_registry().game("gridnav")
    lines: list[str] = []
    fed: list[dict[str, np.ndarray]] = []  # what play feeds at every step
    real = policy.outputs

    def spy(obs, memory=None, **kwargs):
        fed.append({name: value.copy() for name, value in memory.feeds().items()})
        return real(obs, memory, **kwargs)

    monkeypatch.setattr(policy, "outputs", spy)
    episodes = play(policy, spec, policy.variant, episodes=3, seed=4, echo=lines.append)
    monkeypatch.undo()
    assert "state carried" in lines[0]
    assert [f"episode {i}: return" in line for i, line in zip((1, 2, 3), lines[1:4])] == [True] * 3
    first = len(episodes[0].actions)  # the first step of episode 2
    assert fed[0]["prev_action"].tolist() == [-1] and not fed[0]["state"].any()
    assert fed[first]["episode_start"].tolist() == [1.0] and fed[first - 1]["episode_start"] == 0
    assert fed[first]["prev_action"].tolist() == [episodes[0].actions[-1]]
    assert fed[first]["prev_reward"].tolist() == [np.float32(episodes[0].rewards[-1])]
    assert np.abs(fed[first]["state"]).max() > 0  # carried over, not reset
    env = spec.make_env(policy.variant)
    memory = policy.new_level()
    logits_carried, logits_fresh = [], []
    for index, played in enumerate(episodes):
        obs, _ = env.reset(seed=4 + index)
        memory.new_episode()
        fresh = policy.new_level() if index == 1 else None
        for step, action in enumerate(played.actions):
            out = policy.outputs(obs, memory)
            assert int(out["action"]) == action, (index, step)
            if fresh is not None:  # the same episode from a zero state, same actions played
                logits_fresh.append(policy.outputs(obs, fresh)["logits"])
                fresh.played(action)
                logits_carried.append(out["logits"])
            obs, reward, *_ = env.step(action)
            memory.reward(reward)
            if fresh is not None:
                fresh.reward(reward)
    assert np.abs(np.stack(logits_carried) - np.stack(logits_fresh)).max() > 1e-6


def test_play_cli_replays_a_sampled_recurrent_export(exported) -> None:
    folder = exported["pointnav", 15, "sampled"]
    first = invoke("play", folder, "--episodes", 2, "--seed", 1)
    second = invoke("play", folder, "--episodes", 2, "--seed", 1)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout and "episode 2: return" in first.stdout
    assert "sampled actions, state carried" in first.stdout
    result = invoke("play", exported["gridnav", 15, "greedy"], "--episodes", 2, "--sample")
    assert result.exit_code == 0 and "sampled actions" in result.stdout, result.output


def test_the_loader_memory_and_noise_api(exported) -> None:
    policy = OnnxPolicy.load(exported["gridnav", 18, "sampled"], seed=0)
    assert policy.recurrent and policy.takes_noise and policy.noise_size == 4
    memory = policy.new_level(batch=2)
    assert memory.prev_action.tolist() == [-1, -1] and memory.episode_start.tolist() == [1, 1]
    obs = np.zeros((2, 9), np.float32)
    noise = np.full((2, 4), 0.5, np.float32)
    actions = policy.act(obs, memory, noise=noise)
    assert memory.prev_action.tolist() == actions.tolist()
    assert memory.episode_start.tolist() == [0, 0] and np.abs(memory.state).max() > 0
    memory.reward([1.0, -1.0])
    memory.new_episode()
    assert memory.prev_reward.tolist() == [1.0, -1.0] and memory.episode_start.tolist() == [1, 1]
    with pytest.raises(PolicyLoadError, match=r"noise must be .* shaped \[2, 4\], got \[2, 3\]"):
        policy.act(obs, memory, noise=np.zeros((2, 3), np.float32))
    with pytest.raises(PolicyLoadError, match="pass its memory"):
        policy.act(obs)
    with pytest.raises(PolicyLoadError, match="holds 2 rows"):
        policy.act(obs[:1], memory)
    for call in (policy.load_weights, lambda: policy.act_with({}, obs[0]),
                 lambda: policy.adapt(obs, [0, 0], [1.0, 1.0])):
        with pytest.raises(PolicyLoadError, match="recurrent export.*no adapter"):
            call()
    greedy = OnnxPolicy.load(exported["gridnav", 15, "greedy"])
    with pytest.raises(PolicyLoadError, match="takes no noise"):
        greedy.act(obs, greedy.new_level(2), noise=noise)


def test_a_shared_recurrent_policy_keeps_a_memory_per_agent(tmp_path) -> None:
    config = make_config({"game": "duel", "algorithm": "rl2", "iterations": 1, "meta_batch": 2,
                          "envs_per_task": 2, "device": "cpu", "share_policy": True,
                          "options": {"hidden_size": HIDDEN}})
    run = RunDir(tmp_path / "run")
    train(start_run(config, run), run)
    export_policy(run.path, tmp_path / "export", action="sampled")
    policy = OnnxPolicy.load(tmp_path / "export")
    spec = get_registry().game("duel")
    env = make_play_env(policy, spec, spec.variant_space.default(), None, seed=0)
    other = env.parallel_env.drivers.memories["defender"]  # the learner's memory is play's
    memory = policy.new_level()
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        memory.new_episode()
        assert other.episode_start.tolist() == [1.0]
        assert (episode == 0) == (not other.state.any())  # zeros only at the new level
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(policy.act(obs, memory)))
            memory.reward(reward)
            done = terminated or truncated
        assert other.episode_start.tolist() == [0.0] and other.state.any()


# -- one-line errors ---------------------------------------------------------------------------
def test_what_a_recurrent_run_cannot_do_is_one_line(runs, exported, tmp_path) -> None:
    run = runs["gridnav"]
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "a", "--with-adapter"),
                          "--with-adapter", "nothing to adapt")
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "b", "--quantize", "int8"),
                          "--quantize int8", "recurrent")
    assert_one_line_error(invoke("export", run, "-o", tmp_path / "c", "--action", "best"),
                          "--action")
    assert not any((tmp_path / name).exists() for name in "abc")
    result = invoke("adapt", run, "-v", "level.seed=12000", "-o", tmp_path / "d")
    assert_one_line_error(result, "hidden state", "nothing to adapt", "exports/README.md")
    assert result.output.startswith("Error:") and not (tmp_path / "d").exists()
    assert_one_line_error(invoke("play", exported["gridnav", 15, "greedy"], "--adapt-online"),
                          "recurrent", "--adapt-online")


def test_export_prints_the_recurrent_verification(runs, tmp_path) -> None:
    result = invoke("export", runs["pointnav"], "-o", tmp_path / "out", "--opset", 15)
    assert result.exit_code == 0, result.output
    assert "recurrent" in result.output and "with the state carried" in result.output
    # the measured default of a continuous rl2 policy (docs/performance.md)
    assert "state_out" in result.output and "action: sampled" in result.output


def test_every_recurrent_graph_describes_itself(exported) -> None:
    """Issue 16, items 1 and 3: the state size and the rest in metadata_props, lowest IR."""
    for folder in exported.values():
        assert assert_self_describing(folder) == ["policy.onnx"]
