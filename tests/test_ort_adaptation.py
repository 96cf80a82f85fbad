"""In-game adaptation with ONNX Runtime alone matches the engine's torch adaptation.

The game side (numpy + ``gameadapt.ship.onnxpolicy``) plays episodes on a held-out variant,
computes reward-to-go advantages and runs ``adapter.onnx``; the engine runs its own inner
step (``gameadapt.learn.meta.adapt``) on the very same data. The adapted weights agree to 1e-5,
and both raise the greedy return on the variant by the same amount.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gameadapt.algorithm import InnerLoop
from gameadapt.cli import cli
from gameadapt.learn.meta import TaskBatch, adapt
from gameadapt.learn.policy import expand_params, greedy_action, policy_params
from gameadapt.ship.onnxpolicy import OnnxPolicy, reward_to_go_advantages
from gameadapt.ship.sources import load_policy_source

pytestmark = pytest.mark.slow  # trains, exports and adapts with ONNX Runtime

HELD_OUT_GOALS = [(0.4, -0.4), (-0.45, 0.3), (-0.3, -0.3)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ort-adapt")
    run, out = root / "run", root / "export"
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "pointnav", "--iterations", "3", "--meta-batch", "4",
                                 "--envs-per-task", "4", "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["export", str(run), "-o", str(out), "--with-adapter"])
    assert result.exit_code == 0, result.output
    return run, out


def play(env, act, seed: int = 0):
    """One episode; ``act(obs) -> (env action, policy action)``."""
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [], [], []
    while True:
        env_action, policy_action = act(obs)
        observations.append(obs)
        actions.append(policy_action)
        obs, reward, terminated, truncated, _ = env.step(env_action)
        rewards.append(float(reward))
        if terminated or truncated:
            return observations, actions, rewards


@pytest.mark.parametrize("goal", HELD_OUT_GOALS)
def test_ort_adaptation_raises_the_return_like_torch(exported, goal) -> None:
    run, folder = exported
    source = load_policy_source(run)
    spec, policy = source.spec, source.policy
    variant = spec.variant_space.validate({"level": {"goal_x": goal[0], "goal_y": goal[1]}})
    env = spec.make_env(variant)
    onnx = OnnxPolicy.load(folder)
    weights = onnx.load_weights()

    # the game: 20 sampled episodes, reward-to-go advantages, one adapter.onnx step
    rng = np.random.default_rng(0)
    episodes = [play(env, lambda o: onnx.sample(o, rng, weights)) for _ in range(20)]
    observations = np.concatenate([np.stack(e[0]) for e in episodes]).astype(np.float32)
    actions = np.concatenate([np.stack(e[1]) for e in episodes]).astype(np.float32)
    advantages = reward_to_go_advantages([e[2] for e in episodes], 0.99)
    adapted_onnx = onnx.adapt(observations, actions, advantages, weights=weights)

    # the engine: its own inner step on the same data
    n = len(advantages)
    batch = TaskBatch(torch.as_tensor(observations).view(n, 1, 1, -1),
                      torch.as_tensor(actions).view(n, 1, 1, -1), torch.ones(n, 1, 1),
                      torch.zeros(n, 1, 1), torch.as_tensor(advantages).view(n, 1, 1))
    params = {k: v.detach() for k, v in policy_params(policy).items()}
    inner_lr = onnx.manifest["adapter"]["inner_lr"]
    adapted_torch = {k: v[0] for k, v in
                     adapt(policy, expand_params(params, 1), batch, InnerLoop(inner_lr, 1)).items()}
    names = {spec_["name"]: spec_["input_name"] for spec_ in onnx.manifest["weights"]}
    for name, value in adapted_torch.items():
        np.testing.assert_allclose(adapted_onnx[names[name]], value.detach().numpy(),
                                   atol=1e-5, err_msg=name)

    def torch_greedy(params_):
        def act(obs):
            # greedy_action gives the env action (scaled and clipped), like ONNX's "action"
            return greedy_action(policy, torch.as_tensor(obs).unsqueeze(0), params_)[0].numpy(), None
        return act

    before = sum(play(env, lambda o: (onnx.act_with(weights, o), None))[2])
    after_onnx = sum(play(env, lambda o: (onnx.act_with(adapted_onnx, o), None))[2])
    after_torch = sum(play(env, torch_greedy(adapted_torch))[2])
    assert after_onnx == pytest.approx(after_torch, rel=1e-3)
    assert after_onnx > before + 1.0
