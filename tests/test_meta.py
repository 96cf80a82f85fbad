"""The vmapped MAML math (vmap over tasks) against brute-force per-task loops, and the
algorithm plugins."""

from __future__ import annotations

import dataclasses

import gameadapt.learn.meta
import pytest
import torch
from fakegame import BOX_ACTIONS, DISCRETE_ACTIONS, OBSERVATION_SPACE, FakeGame
from gameadapt.algorithm import InnerLoop
from gameadapt.errors import GameadaptError
from gameadapt.host.registry import get_registry
from gameadapt.learn.learner import LearnerConfig, MetaStep, evaluate_adaptation, task_slices
from gameadapt.learn.meta import (
    MetaBatch,
    Surrogate,
    TaskBatch,
    TaskSamples,
    adapt,
    inner_loss,
    make_task_batch,
    meta_gradient,
)
from gameadapt.learn.policy import MLPPolicy, Params, expand_params, policy_params
from gameadapt.learn.reference import reference_adapt, reference_meta_gradient
from gameadapt.learn.rollout import sample_episodes

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead on small machines

GOALS = [(0.3, 0.2), (-0.4, 0.1), (0.0, -0.3)]
INNER_LR = 0.5


def make_data(discrete: bool) -> tuple[MLPPolicy, Params, TaskBatch, TaskBatch]:
    """A policy, its params, and pre/post batches sampled with θ and a perturbed θ'."""
    torch.manual_seed(1)
    game = FakeGame(GOALS, 6, lifetimes=[12, 7, 9], horizon=10, discrete=discrete)
    policy = MLPPolicy(OBSERVATION_SPACE, DISCRETE_ACTIONS if discrete else BOX_ACTIONS, (8, 8))
    params = policy_params(policy)
    frozen = {name: value.detach() for name, value in params.items()}
    pre = make_task_batch(sample_episodes(game, policy, expand_params(frozen, 3), 0), 0.9, 0.8)
    moved = {name: value + 0.05 * torch.randn(value.shape)
             for name, value in expand_params(frozen, 3).items()}
    post = make_task_batch(sample_episodes(game, policy, moved, 1), 0.9, 0.8)
    # sampling log-probs of another policy make the PPO ratios differ from 1 (some clip)
    post = post._replace(log_probs=post.log_probs + 0.3 * torch.randn(post.log_probs.shape))
    return policy, params, pre, post


def assert_params_close(actual: Params, expected: Params, atol: float = 1e-5) -> None:
    assert actual.keys() == expected.keys()
    for name in actual:
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("inner_objective", ["reinforce", "lvc"])
def test_vmapped_adaptation_equals_the_per_task_loop(discrete: bool, steps: int,
                                                     inner_objective: str) -> None:
    policy, params, pre, _ = make_data(discrete)
    inner = InnerLoop(INNER_LR, steps, objective=inner_objective)  # type: ignore[arg-type]
    batched = adapt(policy, expand_params(params, 3), pre, inner)
    looped = reference_adapt(policy, params, pre, inner)
    for task in range(3):
        task_params = dict(params)
        for _ in range(steps):
            loss = inner_loss(policy, task_params, pre.task(task),
                              inner_objective)  # type: ignore[arg-type]
            grads = torch.autograd.grad(loss, list(task_params.values()))
            task_params = {n: v - INNER_LR * g for (n, v), g in zip(task_params.items(), grads)}
        assert_params_close({n: v[task] for n, v in batched.items()}, task_params)
        assert_params_close(looped[task], task_params)


def test_vmapped_adaptation_takes_task_major_samples() -> None:
    """``adapt`` vmaps over dim 0 of :class:`TaskSamples`, the contiguous task-major copy."""
    policy, params, pre, _ = make_data(False)
    samples = TaskSamples.of(pre)
    assert samples.observations.shape[:2] == (3, pre.mask.shape[0] * pre.mask.shape[2])
    assert all(field.is_contiguous() for field in samples)
    torch.testing.assert_close(samples.observations[1].reshape(pre.task(1).observations.shape),
                               pre.task(1).observations)
    assert_params_close(adapt(policy, expand_params(params, 3), samples, InnerLoop(INNER_LR, 2)),
                        adapt(policy, expand_params(params, 3), pre, InnerLoop(INNER_LR, 2)))


@pytest.mark.parametrize("discrete", [False, True])
@pytest.mark.parametrize("objective", ["ppo", "vpg"])
@pytest.mark.parametrize("steps", [1, 2])
def test_vmapped_meta_gradient_equals_the_autograd_loop(discrete: bool, objective: str,
                                                        steps: int) -> None:
    policy, params, pre, post = make_data(discrete)
    surrogate = Surrogate(objective, 0.2)  # type: ignore[arg-type]
    batch = MetaBatch(pre, post)
    for first_order in (False, True):
        inner = InnerLoop(INNER_LR, steps, first_order)
        vmapped = meta_gradient(policy, params, batch, inner, surrogate)
        looped = reference_meta_gradient(policy, params, batch, inner, surrogate)
        assert_params_close(vmapped, looped)
        adapted = reference_adapt(policy, params, pre, inner)
        reused = reference_meta_gradient(policy, params, batch, inner, surrogate,
                                         adapted=adapted)
        assert all(torch.equal(reused[name], looped[name]) for name in params)


def test_lvc_meta_gradient_equals_the_loop_and_adds_curvature() -> None:
    policy, params, pre, post = make_data(False)
    batch, ppo = MetaBatch(pre, post), Surrogate()
    lvc_loop = InnerLoop(INNER_LR, objective="lvc")
    lvc = meta_gradient(policy, params, batch, lvc_loop, ppo)
    assert_params_close(lvc, reference_meta_gradient(policy, params, batch, lvc_loop, ppo))
    # same inner gradient at the sampling parameters (same first-order result) ...
    assert_params_close(meta_gradient(policy, params, batch,
                                      InnerLoop(INNER_LR, first_order=True, objective="lvc"), ppo),
                        meta_gradient(policy, params, batch,
                                      InnerLoop(INNER_LR, first_order=True), ppo))
    # ... but a different Hessian, hence a different second-order meta-gradient
    reinforce = meta_gradient(policy, params, batch, InnerLoop(INNER_LR), ppo)
    assert any(not torch.allclose(lvc[n], reinforce[n], atol=1e-5) for n in params)


def test_second_order_differs_from_first_order() -> None:
    policy, params, pre, post = make_data(False)
    batch = MetaBatch(pre, post)
    second = meta_gradient(policy, params, batch, InnerLoop(INNER_LR, 1, False), Surrogate())
    first = meta_gradient(policy, params, batch, InnerLoop(INNER_LR, 1, True), Surrogate())
    difference = max((second[n] - first[n]).abs().max().item() for n in params)
    scale = max(second[n].abs().max().item() for n in params)
    assert difference > 1e-3 * scale


def test_first_order_is_the_gradient_at_the_adapted_params() -> None:
    """FOMAML's meta-gradient = mean over tasks of the post-loss gradient at θ'ᵢ."""
    policy, params, pre, post = make_data(False)
    vpg = Surrogate("vpg")
    first = meta_gradient(policy, params, MetaBatch(pre, post), InnerLoop(INNER_LR, 1, True), vpg)
    adapted = adapt(policy, expand_params(params, 3), pre, InnerLoop(INNER_LR, 1))
    expected = {n: torch.zeros_like(v) for n, v in params.items()}
    for task in range(3):
        leaf = {n: v[task].detach().requires_grad_() for n, v in adapted.items()}
        one = slice(task, task + 1)
        grads = reference_meta_gradient(policy, leaf, MetaBatch(pre, post).tasks(one),
                                        InnerLoop(INNER_LR, 0), vpg)
        for n in expected:
            expected[n] += grads[n] / 3
    assert_params_close(first, expected)


def test_adaptation_gradient_flows_only_in_second_order() -> None:
    policy, params, pre, _ = make_data(False)
    for first_order, expect_dependence in ((False, True), (True, False)):
        adapted = adapt(policy, expand_params(params, 3), pre, InnerLoop(INNER_LR, 1, first_order))
        # d(θ')/dθ is the identity for first order: the gradient of sum(θ'ᵢ) is 3 everywhere
        grads = torch.autograd.grad(sum(v.sum() for v in adapted.values()),
                                    list(params.values()))
        flat = torch.cat([g.reshape(-1) for g in grads])
        assert (not torch.allclose(flat, torch.full_like(flat, 3.0))) == expect_dependence


@pytest.mark.parametrize("algorithm_id", ["maml", "fomaml"])
@pytest.mark.parametrize("minibatches", [1, 2])
def test_the_first_outer_step_reuses_the_adaptation_that_sampled_post(
        algorithm_id: str, minibatches: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Handing the update the adaptation computed before sampling ``post`` (with its graph)
    gives exactly the update that recomputes the inner step at every outer step."""
    recomputed = []
    monkeypatch.setattr(gameadapt.learn.meta, "adapt",
                        lambda *args, _adapt=gameadapt.learn.meta.adapt, **kwargs:
                        recomputed.append(1) or _adapt(*args, **kwargs))
    policy, params, pre, post = make_data(False)
    learner = get_registry().algorithm(algorithm_id).make(
        {"hidden_sizes": "8,8", "inner_lr": INNER_LR, "outer_epochs": 2,
         "outer_minibatches": minibatches, "outer_lr": 0.01})
    results = []
    for reuse in (True, False):
        copy = {name: value.detach().clone().requires_grad_() for name, value in params.items()}
        adapted = learner.adapt_for_update(policy, copy, pre)
        assert all(value.requires_grad for value in adapted.values())
        assert_params_close({n: v.detach() for n, v in adapted.items()},
                            learner.adapt_batch(policy, copy, pre), atol=1e-6)
        optimizer = learner.make_optimizer(copy)
        batch = MetaBatch(pre, post, adapted if reuse else None)
        learner.optimize_surrogate(MetaStep(policy, copy, optimizer, batch), learner.inner_loop)
        results.append(copy)
    steps = 2 * minibatches
    # the first step (when it covers every task) differentiates the handed adaptation
    assert len(recomputed) == (steps - 1 if minibatches == 1 else steps) + steps
    for name in params:
        assert torch.equal(results[0][name], results[1][name]), name
    assert not torch.equal(results[0]["head.weight"], params["head.weight"])


# -- the algorithm plugins ----------------------------------------------------------------
ALGORITHMS = ["maml", "fomaml", "reptile", "pretrain", "scratch"]


@pytest.mark.parametrize("algorithm_id", ALGORITHMS)
def test_algorithm_plugins_train_and_adapt(algorithm_id: str) -> None:
    torch.manual_seed(0)
    spec = get_registry().algorithm(algorithm_id)
    algorithm = spec.make({"hidden_sizes": "8,8", "outer_epochs": 2, "outer_minibatches": 2,
                           "outer_lr": 0.01, "normalize_observations": True})
    policy = algorithm.make_policy(OBSERVATION_SPACE, BOX_ACTIONS)
    params = policy_params(policy)
    optimizer = algorithm.make_optimizer(params)
    before = {n: v.detach().clone() for n, v in params.items()}
    game = FakeGame(GOALS, 4, horizon=8)
    metrics = algorithm.meta_train_step(policy, params, optimizer, game, seed=0)
    assert {"pre_return", "post_return", "env_steps"} <= metrics.keys()
    if algorithm_id in ("maml", "fomaml", "pretrain"):
        assert metrics["outer_steps"] == 4  # 2 epochs x 2 task slices
    assert metrics["env_steps"] == 2 * 3 * 4 * 8
    changed = any(not torch.equal(before[n], params[n]) for n in params)
    assert changed == algorithm.trains == (algorithm_id != "scratch")
    assert (policy.obs_count.item() > 0) == algorithm.trains
    episodes = sample_episodes(game, policy, expand_params(dict(params), 3), seed=5)
    adapted = algorithm.adapt(policy, params, episodes, steps=2)
    assert all(adapted[n].shape == (3, *params[n].shape) for n in params)
    curve = evaluate_adaptation(algorithm, policy, params, game, seed=3, steps=2)
    assert curve.shape == (3, 3) and torch.isfinite(curve).all()


@pytest.mark.parametrize("freeze", [False, True])
def test_observation_statistics_update_or_freeze(freeze: bool) -> None:
    algorithm = get_registry().algorithm("fomaml").make(
        {"hidden_sizes": [4], "normalize_observations": True, "freeze_normalizer": freeze})
    policy = algorithm.make_policy(OBSERVATION_SPACE, BOX_ACTIONS)
    params = policy_params(policy)
    optimizer = algorithm.make_optimizer(params)
    game = FakeGame(GOALS, 2, horizon=5)
    counts = []
    for seed in range(2):
        algorithm.meta_train_step(policy, params, optimizer, game, seed)
        counts.append(policy.obs_count.item())
    assert counts == ([60.0, 60.0] if freeze else [60.0, 120.0])  # pre + post: 2 x 3 x 2 x 5


def test_algorithms_learn_on_the_fake_game() -> None:
    torch.manual_seed(0)
    algorithm = get_registry().algorithm("maml").make({"hidden_sizes": [16], "outer_lr": 0.01})
    policy = algorithm.make_policy(OBSERVATION_SPACE, BOX_ACTIONS)
    params = policy_params(policy)
    optimizer = algorithm.make_optimizer(params)
    game = FakeGame([(0.5, 0.5)] * 2, 16, horizon=10)
    returns = [algorithm.meta_train_step(policy, params, optimizer, game, seed)["post_return"]
               for seed in range(30)]
    assert sum(returns[-5:]) > sum(returns[:5])


@pytest.mark.parametrize("options, message", [
    ({"inner_lr": -0.1}, "inner_lr"),
    ({"inner_steps": 0}, "inner_steps"),
    ({"outer_lr": "fast"}, "outer_lr"),
    ({"clip": 1.5}, "clip"),
    ({"gamma": 0}, "gamma"),
    ({"outer_objective": "trpo"}, "outer_objective"),
    ({"inner_objective": "dice"}, "inner_objective"),
    ({"outer_minibatches": 0}, "outer_minibatches"),
    ({"hidden_sizes": [64, 0]}, "hidden_sizes"),
    ({"inner_steps": 1.5}, "inner_steps"),
    ({"inner_lr": float("nan")}, "inner_lr"),
    ({"learning_rate": 1}, "unknown algorithm option 'learning_rate'"),
])
def test_invalid_options_are_one_clear_error(options: dict, message: str) -> None:
    with pytest.raises(GameadaptError, match=message) as info:
        get_registry().algorithm("maml").make(options)
    assert "\n" not in str(info.value)


def test_task_slices_cover_every_task_once() -> None:
    assert task_slices(5, 2) == [slice(0, 2), slice(2, 5)] or task_slices(5, 2) == [
        slice(0, 3), slice(3, 5)]
    for tasks, parts in [(20, 1), (20, 3), (3, 7)]:
        covered = [i for s in task_slices(tasks, parts) for i in range(tasks)[s]]
        assert covered == list(range(tasks))


def test_options_are_parsed_from_strings() -> None:
    config = LearnerConfig.from_mapping({"inner_steps": "3", "outer_lr": "1e-3",
                                         "normalize_observations": "yes",
                                         "hidden_sizes": "32,32"})
    assert (config.inner_steps, config.outer_lr, config.normalize_observations,
            config.hidden_sizes) == (3, 1e-3, True, (32, 32))
    assert dataclasses.asdict(config)["hidden_sizes"] == (32, 32)
