"""The shared skeleton of the gradient-based algorithms, and their validated configuration.

Every meta-iteration of :class:`Learner` samples episodes with the shared parameters θ
("pre"), adapts θ per task with the inner step, samples again with the adapted parameters
("post"), and hands both rounds to its *update rule*, the one thing an algorithm plugin
supplies (MAML: a multi-epoch clipped surrogate through the inner step; Reptile: an
interpolation towards the adapted parameters; pretrain: the surrogate with no inner step;
scratch: none). It implements :class:`gameadapt.algorithm.MetaAlgorithm`. Plugins import
this module inside their ``make`` functions, so loading a plugin does not import torch.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import torch

from ..algorithm import AdaptationFamily, GradientAlgorithm, InnerLoop, InnerObjective
from ..game import BatchedGame
from ..hashrandom import derive_seed
from ..limits import LAYER_SIZES_RULE, MAX_INNER_STEPS, check_layer_sizes
from .meta import (
    INNER_OBJECTIVES,
    OBJECTIVES,
    MetaBatch,
    Objective,
    Surrogate,
    TaskBatch,
    adapt,
    make_task_batch,
    outer_loss,
)
from .options import (
    NORM_MAX,
    check_options,
    common_checks,
    learning_rate,
    options_from_mapping,
    within,
)
from . import shard
from .policy import MLPPolicy, Params, detached, expand_params
from .rollout import Episodes, learner_returns, sample_episodes


@dataclass(frozen=True)
class LearnerConfig:
    """Hyper-parameters of the gradient-based algorithms (defaults: MAML's 2D navigation).

    The defaults were tuned on pointnav with ``bench/pointnav_quality.py`` (the figures are
    in ``docs/performance.md``, "Tuning the defaults"). ``normalize_observations`` is off by
    default because running statistics that move with the policy destabilised meta-training
    there; turn it on for games whose observations are far from unit scale.
    """

    hidden_sizes: tuple[int, ...] = (64, 64)  # tanh MLP hidden layers
    init_log_std: float = 0.0  # initial log std of a Gaussian policy
    scale_actions: bool = True  # Gaussian in units of the Box's half-range (see MLPPolicy)
    inner_lr: float = 0.1  # α of the inner SGD step
    inner_steps: int = 1  # inner steps in training and the default at adaptation
    inner_objective: InnerObjective = "reinforce"  # "reinforce" (MAML) or "lvc" (ProMP's)
    outer_lr: float = 1e-3  # Adam learning rate of the outer step
    outer_epochs: int = 5  # passes over each meta-batch (PPO epochs)
    outer_minibatches: int = 1  # optimiser steps per pass, each on a slice of the tasks
    outer_objective: Objective = "ppo"  # "ppo" (clipped surrogate) or "vpg" (policy gradient)
    clip: float = 0.2  # PPO ratio clip
    target_kl: float = 0.0  # stop a meta-batch's epochs once approx. KL exceeds it (0: never)
    max_grad_norm: float = 0.0  # clip the outer gradient's norm (0: no clipping)
    gamma: float = 0.99  # discount
    gae_lambda: float = 1.0  # GAE λ
    baseline_ridge: float = 1e-5  # ridge term of the linear baseline's least squares
    normalize_advantages: bool = True  # standardise advantages per task
    normalize_observations: bool = False  # running observation normalisation (see above)
    freeze_normalizer: bool = False  # statistics of the first meta-batch only, then frozen

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any
                     ) -> LearnerConfig:
        """A validated config from ``values`` (strings are parsed) and keyword overrides.

        Raises :class:`GameadaptError` with one line for an unknown key or a bad value.
        """
        return options_from_mapping(cls, values, **overrides)

    def validate(self) -> None:
        """Raise :class:`GameadaptError` naming the first invalid value."""
        checks = [
            learning_rate("inner_lr", self.inner_lr),
            within("inner_steps", self.inner_steps, 1, MAX_INNER_STEPS),
            ("inner_objective", self.inner_objective in INNER_OBJECTIVES,
             f"must be one of {', '.join(INNER_OBJECTIVES)}"),
            learning_rate("outer_lr", self.outer_lr),
            ("outer_objective", self.outer_objective in OBJECTIVES,
             f"must be one of {', '.join(OBJECTIVES)}"),
            within("target_kl", self.target_kl, 0, NORM_MAX),
            within("baseline_ridge", self.baseline_ridge, 0, NORM_MAX),
            ("hidden_sizes", check_layer_sizes(self.hidden_sizes), LAYER_SIZES_RULE),
            *common_checks(self, "outer_epochs", "outer_minibatches"),
        ]
        check_options(self, checks)


@dataclass
class MetaStep:
    """What an update rule gets from one meta-iteration: the policy, its shared ``params`` (to
    change in place), the outer ``optimizer``, and the meta-batch: ``batch.pre`` and
    ``batch.post`` (:class:`~gameadapt.learn.meta.TaskBatch` es) and ``batch.adapted``, the
    per-task parameters that sampled ``post``, as :meth:`Learner.adapt_for_update` returns them
    (still differentiable with respect to ``params``, so a rule can differentiate through them
    instead of recomputing them)."""

    policy: MLPPolicy
    params: Params
    optimizer: torch.optim.Optimizer
    batch: MetaBatch


UpdateRule = Callable[["Learner", MetaStep], dict[str, float]]
"""``rule(learner, step) -> stats``: changes ``step.params`` in place from one meta-batch."""


class Learner:
    """Shared skeleton of MAML, FOMAML, Reptile and the baselines (see the module doc);
    a :class:`~gameadapt.algorithm.MetaAlgorithm`.

    ``update`` is the algorithm's update rule; ``None`` means the shared parameters are
    never trained (``trains`` is False), as for the from-scratch baseline. ``first_order``
    says whether the adapted parameters handed to the rule carry the inner gradient's own
    derivative (False: second order, as MAML's update needs) or treat it as a constant.
    """

    family: AdaptationFamily = "gradient"

    def __init__(self, name: str, config: LearnerConfig, update: UpdateRule | None, *,
                 first_order: bool = True) -> None:
        self.name = name
        self.config = config
        self.update_rule = update
        self.trains = update is not None
        self.first_order = first_order
        self.inner_loop = InnerLoop(config.inner_lr, config.inner_steps, first_order,
                                    config.inner_objective)
        self.surrogate = Surrogate(config.outer_objective, config.clip)

    def options(self) -> dict[str, Any]:
        """The resolved :class:`LearnerConfig` (``dataclasses.asdict``)."""
        return dataclasses.asdict(self.config)

    def with_inner_lr(self, lr: float) -> Learner:
        """The same learner adapting with inner step size ``lr``."""
        return Learner(self.name, dataclasses.replace(self.config, inner_lr=lr),
                       self.update_rule, first_order=self.first_order)

    def make_policy(self, observation_space: gymnasium.spaces.Space,
                    action_space: gymnasium.spaces.Space) -> MLPPolicy:
        """A freshly initialised :class:`MLPPolicy` with the configured layers."""
        return MLPPolicy(observation_space, action_space, self.config.hidden_sizes,
                         self.config.init_log_std, self.config.scale_actions)

    def make_optimizer(self, params: Params) -> torch.optim.Optimizer:
        """Adam over the shared parameters at ``outer_lr``."""
        return torch.optim.Adam(list(params.values()), lr=self.config.outer_lr)

    def task_batch(self, episodes: Episodes) -> TaskBatch:
        """Episodes with the configured advantages."""
        cfg = self.config
        return make_task_batch(episodes, cfg.gamma, cfg.gae_lambda, ridge=cfg.baseline_ridge,
                               normalize=cfg.normalize_advantages)

    def adapt(self, policy: MLPPolicy, params: Params, episodes: Episodes,
              steps: int | None = None) -> Params:
        """Per-task parameters ``[M, ...]`` after ``steps`` (default: ``inner_steps``) steps."""
        return self.adapt_batch(policy, params, self.task_batch(episodes), steps)

    def adapt_batch(self, policy: MLPPolicy, params: Params, batch: TaskBatch,
                    steps: int | None = None) -> Params:
        """:meth:`adapt` on episodes whose advantages are already computed (detached result)."""
        inner = dataclasses.replace(self.inner_loop, first_order=True)
        if steps is not None:
            inner = inner.with_steps(steps)
        return detached(adapt(policy, expand_params(detached(params), batch.num_tasks), batch,
                              inner))

    def adapt_for_update(self, policy: MLPPolicy, params: Params, batch: TaskBatch) -> Params:
        """The ``inner_steps`` adaptation of ``params`` per task, differentiable w.r.t. ``params``.

        Through the inner gradient unless :attr:`first_order`. Its values are the post-update
        policies that sample the ``post`` round, and the same graph serves the update rule's
        first outer step (:meth:`optimize_surrogate`), so the inner step runs once for both.
        """
        return adapt(policy, expand_params(params, batch.num_tasks), batch, self.inner_loop)

    def meta_train_step(self, policy: MLPPolicy, params: Params,
                        optimizer: torch.optim.Optimizer, game: BatchedGame,
                        seed: int) -> dict[str, float]:
        """Sample pre episodes, adapt, sample post episodes, :meth:`update`; return metrics."""
        shared = detached(params)
        pre_episodes = sample_episodes(game, policy, expand_params(shared, game.num_tasks),
                                       derive_seed(seed, 0))
        pre = self.task_batch(pre_episodes)
        with torch.set_grad_enabled(self.trains):
            adapted = self.adapt_for_update(policy, params, pre)
        post_episodes = sample_episodes(game, policy, detached(adapted), derive_seed(seed, 1))
        post = self.task_batch(post_episodes)
        stats = {}
        if self.update_rule is not None:
            stats = self.update_rule(self, MetaStep(policy, params, optimizer,
                                                    MetaBatch(pre, post, adapted)))
        if self.trains and self.config.normalize_observations and not (
                self.config.freeze_normalizer and policy.obs_count.item() > 0):
            policy.update_normalizer(torch.cat([pre.observations, post.observations]),
                                     torch.cat([pre.mask, post.mask]))
        return {
            "pre_return": shard.global_mean(pre_episodes.returns),
            "post_return": shard.global_mean(post_episodes.returns),
            "env_steps": shard.sums(pre_episodes.num_steps + post_episodes.num_steps)[0],
            **stats,
        }

    def optimize_surrogate(self, step: MetaStep, inner: InnerLoop) -> dict[str, float]:
        """``outer_epochs`` passes of optimiser steps on :func:`gameadapt.learn.meta.outer_loss`.

        Each pass takes one step per slice of the tasks (``outer_minibatches`` slices).
        Stops early once the approximate KL of a step exceeds ``target_kl`` (if set).
        ``step.batch.adapted`` (:meth:`adapt_for_update` of the current parameters, for this
        ``inner`` loop) saves recomputing the inner steps in the first step when that step
        covers every task; later steps start from updated parameters.
        """
        cfg = self.config
        slices = task_slices(shard_total(step.batch.post.num_tasks), cfg.outer_minibatches)
        first: MetaBatch | None = step.batch if len(slices) == 1 else None
        steps = 0
        for _ in range(cfg.outer_epochs):
            for chunk in slices:  # a slice of the meta-batch; sharded: this rank's part of it
                batch = first if first is not None else step.batch.tasks(local_tasks(chunk))
                first = None
                loss, stats = outer_loss(step.policy, step.params, batch, inner, self.surrogate,
                                         chunk.stop - chunk.start)
                step.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                shard.reduce_gradients(step.params.values())  # sharded: the whole gradient
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(list(step.params.values()), cfg.max_grad_norm)
                step.optimizer.step()
                steps += 1
                if cfg.target_kl > 0 and stats["approx_kl"].item() > cfg.target_kl:
                    return _surrogate_stats(loss, stats, steps)
        return _surrogate_stats(loss, stats, steps)


def shard_total(num_tasks: int) -> int:
    """The meta-batch's task count: ``num_tasks`` in one process, the shard's total when
    sharded."""
    current = shard.current()
    return num_tasks if current is None else current.total


def local_tasks(chunk: slice) -> slice:
    """A slice of the meta-batch's tasks as a slice of this rank's (possibly empty)."""
    current = shard.current()
    if current is None:
        return chunk
    start, stop = max(chunk.start, current.start), min(chunk.stop, current.stop)
    return slice(start - current.start, max(start, stop) - current.start)


def task_slices(num_tasks: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices of ``range(num_tasks)`` (none empty)."""
    parts = max(1, min(parts, num_tasks))
    bounds = [round(i * num_tasks / parts) for i in range(parts + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def _surrogate_stats(loss: torch.Tensor, stats: dict[str, torch.Tensor], steps: int
                     ) -> dict[str, float]:
    return {"outer_loss": shard.sums(loss.item())[0],  # sharded: the ranks' shares summed
            "approx_kl": stats["approx_kl"].item(),
            "clip_fraction": stats["clip_fraction"].item(), "outer_steps": float(steps)}


@torch.no_grad()
def evaluate_adaptation(algorithm: GradientAlgorithm, policy: MLPPolicy, params: Params,
                        game: BatchedGame, seed: int, steps: int) -> torch.Tensor:
    """Per-task mean return ``[steps + 1, M]`` after 0, 1, ..., ``steps`` inner steps.

    In a multi-agent game the return is the learner's (adaptation uses every controlled
    agent's episodes).

    Every task adapts from the same pre-adaptation episodes (sampled with ``params``); the
    episodes after each step share one noise seed, so the rows differ only by adaptation.
    """
    shared = detached(params)
    pre = sample_episodes(game, policy, expand_params(shared, game.num_tasks),
                          derive_seed(seed, 0))
    rows = [learner_returns(pre, game).mean(1)]
    for k in range(1, steps + 1):
        with torch.enable_grad():
            adapted = algorithm.adapt(policy, shared, pre, k)
        post = sample_episodes(game, policy, adapted, derive_seed(seed, 1))
        rows.append(learner_returns(post, game).mean(1))
    return torch.stack(rows)
