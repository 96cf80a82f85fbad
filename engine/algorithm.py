"""Algorithm specs (what a plugin registers), the protocol of the objects they make, and the
values that describe how an algorithm adapts (its family, its inner loop, its adaptation state)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from .errors import GameadaptError

if TYPE_CHECKING:
    import gymnasium
    import torch

    from .game import BatchedGame
    from .learn.rollout import Episodes


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm plugin's entry.

    ``make(config)`` builds the algorithm object that the trainer drives (see
    :mod:`gameadapt.train.session`); ``adapts`` says whether the algorithm meta-learns an
    initialisation for fast adaptation (MAML, Reptile) or is a baseline that is only
    fine-tuned at evaluation time; ``action_kinds`` lists the action spaces it supports.
    """

    id: str
    description: str
    make: Callable[..., Any]
    adapts: bool = True
    action_kinds: tuple[str, ...] = ("discrete", "continuous")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe description (used by ``algorithms list --json``)."""
        return {
            "id": self.id,
            "description": self.description,
            "adapts": self.adapts,
            "action_kinds": list(self.action_kinds),
        }


AdaptationFamily = Literal["gradient", "recurrent", "context"]
"""How an algorithm adapts to a new task: ``"gradient"`` (MAML and its siblings: a gradient
step on the task's episodes; :class:`GradientAlgorithm`), ``"recurrent"`` (RL²: the hidden
state of a recurrent policy carried across the episodes of a trial) or ``"context"`` (task
inference: a posterior over a latent task variable, from the trial's transitions). The last
two need no gradient step and are :class:`TrialAlgorithm` s."""
ADAPTATION_FAMILIES: tuple[str, ...] = ("gradient", "recurrent", "context")
TRIAL_FAMILIES: tuple[str, ...] = ("recurrent", "context")

InnerObjective = Literal["reinforce", "lvc"]
INNER_OBJECTIVES: tuple[str, ...] = ("reinforce", "lvc")

AdaptationState = dict[str, "torch.Tensor"]
"""What a gradient algorithm's adaptation to a batch of tasks produces, which its policy then
acts with: the adapted parameters, one per task (every tensor ``[M, ...]``). (A recurrent
policy's adaptation is its hidden state, which lives inside the rollout.)"""


@dataclass(frozen=True)
class InnerLoop:
    """The gradient family's adaptation, as one value: ``steps`` SGD steps of size ``lr``.

    ``objective`` is the inner loss (``reinforce``: MAML's; ``lvc``: ProMP's); ``first_order``
    treats the inner gradient as a constant when the outer loss is differentiated (FOMAML).
    """

    lr: float
    steps: int = 1
    first_order: bool = False
    objective: InnerObjective = "reinforce"

    def with_steps(self, steps: int) -> InnerLoop:
        """The same loop with another number of steps."""
        return dataclasses.replace(self, steps=steps)


class MetaAlgorithm(Protocol):
    """What ``AlgorithmSpec.make(config)`` returns: the trainer's whole view of an algorithm.

    A trainer owns the policy, its parameters (``policy_params(policy)``, the module's own
    tensors) and the optimizer, and per iteration builds a batched game of freshly sampled
    training variants (``M`` tasks x ``E`` envs) and calls :meth:`meta_train_step`. How it
    adapts at evaluation depends on its ``family``: :class:`GradientAlgorithm` or
    :class:`TrialAlgorithm` (see :mod:`gameadapt.train.experience`).
    """

    name: str
    trains: bool  # False for a baseline whose initialisation is never trained (scratch)
    family: AdaptationFamily

    def options(self) -> dict[str, Any]:
        """The resolved hyper-parameters, JSON-safe (recorded in the run's ``config.json``)."""
        ...

    def make_policy(self, observation_space: gymnasium.spaces.Space,
                    action_space: gymnasium.spaces.Space) -> torch.nn.Module:
        """A freshly initialised policy for these spaces."""
        ...

    def make_optimizer(self, params: dict[str, torch.Tensor]) -> torch.optim.Optimizer:
        """The outer optimiser over the shared parameters."""
        ...

    def meta_train_step(self, policy: torch.nn.Module, params: dict[str, torch.Tensor],
                        optimizer: torch.optim.Optimizer, game: BatchedGame,
                        seed: int) -> dict[str, float]:
        """One meta-iteration on ``game``; updates ``params`` in place.

        Returns at least ``pre_return`` and ``post_return`` (mean episode return before and
        after adaptation) and ``env_steps`` (env steps sampled in this iteration).
        """
        ...


class GradientAlgorithm(MetaAlgorithm, Protocol):
    """The gradient family: adapts by ``inner_loop`` steps on a task's episodes.

    At evaluation it samples episodes with the shared parameters on held-out variants and
    calls :meth:`adapt` (see :func:`gameadapt.learn.learner.evaluate_adaptation`).
    """

    inner_loop: InnerLoop  # its defaults for adapt

    def adapt(self, policy: torch.nn.Module, params: dict[str, torch.Tensor],
              episodes: Episodes, steps: int | None = None) -> AdaptationState:
        """The adaptation state of every task of ``episodes`` after ``steps`` inner steps."""
        ...

    def with_inner_lr(self, lr: float) -> GradientAlgorithm:
        """The same algorithm adapting with step size ``lr`` (a baseline's own fine-tuning)."""
        ...


class TrialAlgorithm(MetaAlgorithm, Protocol):
    """The recurrent and context families: adapt in what the policy carries across the
    episodes of a *trial* on one variant (a hidden state, a task posterior); trained on
    trials of ``trial_episodes`` episodes."""

    trial_episodes: int


def gradient_algorithm(algorithm: MetaAlgorithm, what: str) -> GradientAlgorithm:
    """``algorithm`` as a :class:`GradientAlgorithm`, or a one-line error saying ``what``
    needs a gradient step."""
    if algorithm.family != "gradient":
        raise GameadaptError(f"{what} adapts with a gradient step; {algorithm.name!r} adapts "
                             f"in its {algorithm.family} state instead")
    return cast(GradientAlgorithm, algorithm)


def trial_algorithm(algorithm: MetaAlgorithm) -> TrialAlgorithm:
    """``algorithm`` as a :class:`TrialAlgorithm` (its family must be one of
    ``TRIAL_FAMILIES``)."""
    assert algorithm.family in TRIAL_FAMILIES, algorithm.family
    return cast(TrialAlgorithm, algorithm)
