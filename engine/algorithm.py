"""Algorithm specs (what a plugin registers) and the protocol of the objects they make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import gymnasium
    import torch

    from .game import BatchedGame
    from .rollout import Episodes


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm plugin's entry.

    ``make(config)`` builds the algorithm object that the trainer drives (see
    :mod:`gameadapt.trainer`); ``adapts`` says whether the algorithm meta-learns an
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


class MetaAlgorithm(Protocol):
    """What ``AlgorithmSpec.make(config)`` returns: the trainer's whole view of an algorithm.

    A trainer owns the policy, its parameters (``policy_params(policy)``, the module's own
    tensors) and the optimizer, and per iteration builds a batched game of freshly sampled
    training variants (``M`` tasks x ``E`` envs) and calls :meth:`meta_train_step`. At
    evaluation it samples episodes with the shared parameters on held-out variants and calls
    :meth:`adapt` with ``k`` steps (see :func:`gameadapt.learner.evaluate_adaptation`).
    ``config`` is a dataclass (``dataclasses.asdict`` gives its JSON form).
    """

    config: Any
    trains: bool  # False for a baseline whose initialisation is never trained (scratch)

    def make_policy(self, observation_space: gymnasium.spaces.Box,
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

    def adapt(self, policy: torch.nn.Module, params: dict[str, torch.Tensor],
              episodes: Episodes, steps: int | None = None) -> dict[str, torch.Tensor]:
        """Per-task parameters (leading dim ``M``) after ``steps`` inner steps on ``episodes``."""
        ...
