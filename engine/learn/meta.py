"""The functional math of gradient-based meta-learning: params dict in, params dict out.

Notation (Finn et al., 2017): per task ``i``, an inner step ``θ'ᵢ = θ − α ∇θ Lᵢ(θ)`` on
episodes sampled with ``θ``; the outer loss is evaluated on episodes sampled with ``θ'ᵢ`` and
differentiated *through* the inner step (second order) unless ``first_order`` detaches the
inner gradient. A meta-batch is one batched computation: the per-task parameters ``[M, ...]``
are batched with ``torch.func.vmap`` over the task dimension, the inner step is
``torch.func.grad`` of the one-task :func:`inner_loss` (the policy evaluated with
``torch.func.functional_call``), and the outer loss evaluates the adapted parameters with the
same vmapped functional call. :func:`reference_adapt` and :func:`reference_meta_gradient` are
the same adaptation and meta-gradient as per-task Python loops with
``torch.autograd.grad(create_graph=True)`` (in :mod:`gameadapt.learn.reference`).

Three small values carry the settings: :class:`~gameadapt.algorithm.InnerLoop` (the inner
steps), :class:`Surrogate` (the outer per-step loss) and :class:`MetaBatch` (the two rounds
of episodes of a meta-batch, and the adaptation that sampled the second one, if computed).

All losses read a :class:`TaskBatch`: time-major ``[T, M, E, ...]`` tensors holding the
episodes, their sampling log-probabilities and their (per-task) advantages. The vmapped
losses first copy it task-major (:class:`TaskSamples`, ``[M, T * E, ...]``) and vmap over
dim 0, so that each task's samples are one contiguous block: vmapping over dim 1 of the
time-major tensors would hand strided operands to the batched matmuls and elementwise
kernels, which are markedly slower on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal, NamedTuple

import torch
from torch.func import grad, vmap

from ..algorithm import INNER_OBJECTIVES, InnerLoop, InnerObjective
from . import shard
from .advantages import baseline_advantages
from .policy import MLPPolicy, Params, detached, evaluate_actions, expand_params
from .rollout import Episodes

Objective = Literal["ppo", "vpg"]
OBJECTIVES: tuple[str, ...] = ("ppo", "vpg")
__all__ = ["INNER_OBJECTIVES", "OBJECTIVES", "InnerLoop", "InnerObjective", "MetaBatch",
           "Objective", "Surrogate", "TaskBatch", "TaskSamples", "adapt", "inner_loss",
           "make_task_batch", "masked_mean", "meta_gradient", "outer_loss", "surrogate_loss"]


class TaskBatch(NamedTuple):
    """What the losses read from a round of episodes; every field is ``[T, M, E, ...]``."""

    observations: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor  # of the sampling policy, no gradient
    advantages: torch.Tensor  # no gradient

    @property
    def num_tasks(self) -> int:
        return self.mask.shape[1]

    def task(self, index: int) -> TaskBatch:
        """One task's batch, every field ``[T, E, ...]``."""
        return TaskBatch(*(field[:, index] for field in self))

    def tasks(self, selection: slice) -> TaskBatch:
        """The batch of a slice of the tasks (fields stay ``[T, M', E, ...]``)."""
        return TaskBatch(*(field[:, selection] for field in self))


class MetaBatch(NamedTuple):
    """A meta-batch's two rounds: ``pre`` (sampled with the shared parameters, adapted on)
    and ``post`` (sampled with the adapted ones). ``adapted``, when given, is :func:`adapt`
    of the shared parameters on ``pre`` with its graph, computed earlier: the outer loss then
    differentiates it instead of recomputing the inner steps."""

    pre: TaskBatch
    post: TaskBatch
    adapted: Params | None = None

    def tasks(self, selection: slice) -> MetaBatch:
        """The meta-batch of a slice of the tasks (the precomputed adaptation is dropped)."""
        return MetaBatch(self.pre.tasks(selection), self.post.tasks(selection))


@dataclass(frozen=True)
class Surrogate:
    """The outer per-step loss: PPO's clipped surrogate (``ppo``, ratio clip ``clip``) or the
    importance-weighted policy gradient (``vpg``)."""

    objective: Objective = "ppo"
    clip: float = 0.2


class TaskSamples(NamedTuple):
    """A :class:`TaskBatch` task-major: every field a contiguous ``[M, T * E, ...]``."""

    observations: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    advantages: torch.Tensor

    @classmethod
    def of(cls, batch: TaskBatch) -> TaskSamples:
        """The fields of ``batch`` with ``[T, M, E]`` flattened to ``[M, T * E]`` (copies)."""
        return cls(*(field.transpose(0, 1).reshape(field.shape[1], -1, *field.shape[3:])
                     for field in batch))


def make_task_batch(episodes: Episodes, gamma: float, gae_lambda: float, *,
                    ridge: float = 1e-5, normalize: bool = True) -> TaskBatch:
    """Episodes plus their GAE advantages from a per-task linear baseline."""
    advantages = baseline_advantages(episodes.observations, episodes.rewards, episodes.mask,
                                     gamma, gae_lambda, ridge=ridge, normalize=normalize)
    return TaskBatch(episodes.observations, episodes.actions, episodes.mask,
                     episodes.log_probs, advantages)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the entries where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def inner_loss(policy: MLPPolicy, params: Params, batch: TaskBatch | TaskSamples,
               objective: InnerObjective = "reinforce") -> torch.Tensor:
    """Inner policy-gradient loss of one task (fields ``[T, E, ...]`` or ``[N, ...]``).

    ``reinforce``: ``−mean(log π · A)``, as in MAML. ``lvc``: ``−mean(π / π_old · A)``, the
    low-variance curvature objective of ProMP (Rothfuss et al., 2019): the same gradient at
    the sampling parameters, but its Hessian also credits how θ shaped the pre-update samples.
    """
    log_probs, _ = evaluate_actions(policy, params, batch.observations, batch.actions)
    return -masked_mean(_inner_weights(log_probs, batch, objective) * batch.advantages,
                        batch.mask)


def _inner_weights(log_probs: torch.Tensor, batch: TaskBatch | TaskSamples,
                   objective: InnerObjective) -> torch.Tensor:
    """What multiplies the advantages in the inner loss: ``log π`` or ``π / π_old``."""
    return log_probs if objective == "reinforce" else torch.exp(log_probs - batch.log_probs)


def task_masked_means(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-task masked means ``[M]`` of task-major ``[M, N]`` values."""
    return (values * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def adapt(policy: MLPPolicy, params: Params, batch: TaskBatch | TaskSamples,
          inner: InnerLoop) -> Params:
    """``inner.steps`` SGD steps per task on ``batch``; ``params`` and the result are ``[M, ...]``.

    ``torch.func.grad`` of :func:`inner_loss`, vmapped over the tasks of the task-major
    samples. Differentiable with respect to ``params`` (second order) unless
    ``inner.first_order``, which takes each inner gradient at detached parameters (the same
    value, no graph).
    """
    if inner.steps == 0:
        return params
    samples = batch if isinstance(batch, TaskSamples) else TaskSamples.of(batch)
    inner_grad = grad(partial(inner_loss, policy, objective=inner.objective))

    def adapt_one(task_params: Params, task_samples: TaskSamples) -> Params:
        for _ in range(inner.steps):
            at = detached(task_params) if inner.first_order else task_params
            grads = inner_grad(at, task_samples)
            task_params = {name: value - inner.lr * grads[name]
                           for name, value in task_params.items()}
        return task_params

    return vmap(adapt_one)(params if inner.first_order else _column_major_weights(params),
                           samples)


def _column_major_weights(params: Params) -> Params:
    """``params`` with the per-task weight matrices ``[M, out, in]`` that have ``out >= in``
    stored column-major (the others, such as a narrow head's, stay row-major).

    Same values. Under ``torch.func.grad`` the backward of ``x @ Wᵀ`` picks its product order
    from ``W``'s layout: for a row-major ``W`` it forms the weight gradient as ``gᵀ x``, for a
    column-major one as ``xᵀ g``. For square hidden layers column-major wins: with ``gᵀ x``
    the derivative with respect to ``g`` in the outer (second-order) backward comes out
    transposed (``[M, features, N]`` in memory) and makes the elementwise ops and ``bmm`` that
    read it strided. For a layer with few outputs (a 2-action head) MKL's batched matmul is
    slow when the product's last dimension is that small (``xᵀ g`` as ``[64, N] @ [N, 2]``), so
    such weights keep the row-major order. Only second order gains (first order has no outer
    backward through the inner step, and is a little faster row-major). The timings behind
    this are in ``docs/performance.md`` ("Measured reasons behind code choices").
    """
    return {name: value.mT.contiguous().mT
            if value.dim() == 3 and value.shape[1] >= value.shape[2] else value
            for name, value in params.items()}


def surrogate_loss(log_probs: torch.Tensor, batch: TaskBatch | TaskSamples,
                   objective: Objective = "ppo", clip: float = 0.2) -> torch.Tensor:
    """Per-step policy loss: PPO's clipped surrogate, or the importance-weighted gradient."""
    ratio = torch.exp(log_probs - batch.log_probs)
    if objective == "vpg":
        return -ratio * batch.advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -torch.minimum(ratio * batch.advantages, clipped * batch.advantages)


def outer_loss(policy: MLPPolicy, params: Params, batch: MetaBatch, inner: InnerLoop,
               surrogate: Surrogate, tasks: int | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The meta-objective on ``batch.post`` after adapting the shared ``params`` on ``batch.pre``.

    Returns the loss (mean over tasks of each task's masked mean) and detached statistics
    ``approx_kl`` and ``clip_fraction``. ``inner.steps == 0`` gives the plain multi-task loss.
    ``batch.adapted``, when given, is used instead of recomputing the inner steps. Sharded,
    the mean is over ``tasks`` tasks of all ranks (default: the whole meta-batch).
    """
    if batch.post.num_tasks == 0:  # a rank with none of a minibatch's tasks: zero share
        return _no_tasks(params)
    samples = TaskSamples.of(batch.post)
    adapted = batch.adapted
    if adapted is None:
        adapted = adapt(policy, expand_params(params, batch.post.num_tasks),
                        TaskSamples.of(batch.pre), inner)
    log_probs, _ = vmap(partial(evaluate_actions, policy))(adapted, samples.observations,
                                                            samples.actions)
    loss = shard.task_mean(task_masked_means(surrogate_loss(log_probs, samples,
                                                            surrogate.objective,
                                                            surrogate.clip), samples.mask),
                           tasks)
    with torch.no_grad():
        log_ratio = log_probs - samples.log_probs
        clipped = ((log_ratio.exp() - 1.0).abs() > surrogate.clip).float()
        stats = {
            "approx_kl": shard.task_mean(task_masked_means(torch.expm1(log_ratio) - log_ratio,
                                                           samples.mask), tasks),
            "clip_fraction": shard.task_mean(task_masked_means(clipped, samples.mask), tasks),
        }
    # sharded: the loss is this rank's share (its gradient is all-reduced), stats the whole
    return loss, shard.reduce_stats(stats)


def _no_tasks(params: Params) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`outer_loss` of no tasks: zero, with zero gradients, and the shared statistics."""
    loss = torch.stack([value.sum() * 0.0 for value in params.values()]).sum()
    zero = torch.zeros((), device=loss.device)
    return loss, shard.reduce_stats({"approx_kl": zero, "clip_fraction": zero})


def meta_gradient(policy: MLPPolicy, params: Params, batch: MetaBatch, inner: InnerLoop,
                  surrogate: Surrogate) -> Params:
    """Gradient of :func:`outer_loss` with respect to the shared ``params`` (vmapped)."""
    loss, _ = outer_loss(policy, params, batch, inner, surrogate)
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
