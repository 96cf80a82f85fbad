"""Game specs and the batched-game protocol that the trainer steps.

A game plugin registers a :class:`GameSpec`. Every game has a single-instance
``gymnasium.Env`` view (numpy only, no torch) made by ``make_env(variant)``. A *native*
game also has ``make_batched(variants, envs_per_task, device)``, which returns a
:class:`BatchedGame` that steps a ``[tasks, envs]`` batch of different variants at once as
torch tensors on any device. Games without it are stepped through ``gymnasium.vector``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import gymnasium

from .variants import Variant, VariantSpace

if TYPE_CHECKING:
    import torch

GameApi = Literal["native", "gymnasium", "pettingzoo"]
GAME_APIS: tuple[str, ...] = ("native", "gymnasium", "pettingzoo")


class BatchedStep(NamedTuple):
    """What :meth:`BatchedGame.step` returns; every tensor is shaped ``[tasks, envs, ...]``."""

    observation: torch.Tensor  # float32 [M, E, obs_dim]
    reward: torch.Tensor  # float32 [M, E]
    terminated: torch.Tensor  # bool [M, E]
    truncated: torch.Tensor  # bool [M, E]


class BatchedGame(Protocol):
    """``num_tasks`` variants x ``envs_per_task`` copies each, stepped as one batch of tensors.

    Each env plays one episode per :meth:`reset`. Once an env's episode has ended
    (terminated or truncated), later steps leave its observation unchanged and give it
    reward 0 and ``terminated = truncated = False``; its actions are ignored.
    Env ``(m, e)`` draws its randomness from the stream ``stream_key(seed, m * E + e)``
    (see :mod:`gameadapt.hashrandom`), so it replays exactly in the single-instance view
    reset with ``seed=seed, options={"stream": m * E + e}``.
    """

    num_tasks: int
    envs_per_task: int
    horizon: int  # the longest episode any env of the batch can have
    device: torch.device

    def reset(self, seed: int) -> torch.Tensor:
        """Start a new episode in every env; return observations ``[M, E, obs_dim]``."""
        ...

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Apply actions (``[M, E]`` long for discrete games, ``[M, E, act_dim]`` float)."""
        ...


MakeEnv = Callable[..., gymnasium.Env]
MakeBatched = Callable[[Sequence[Variant], int, Any], BatchedGame]


@dataclass(frozen=True)
class GameSpec:
    """Everything the engine needs to know about a game.

    ``make_env(variant, render_mode=None)`` builds the single-instance gymnasium view;
    ``make_batched`` (native games only) builds the batched tensor view;
    ``gym_id`` is the id under which the single view is registered with gymnasium, if any.
    """

    id: str
    description: str
    api: GameApi
    observation_space: gymnasium.spaces.Box
    action_space: gymnasium.spaces.Space
    variant_space: VariantSpace
    make_env: MakeEnv
    make_batched: MakeBatched | None = None
    gym_id: str | None = None

    def __post_init__(self) -> None:
        if self.api not in GAME_APIS:
            raise ValueError(f"game {self.id!r}: api must be one of {GAME_APIS}, not {self.api!r}")
        if self.api == "native" and self.make_batched is None:
            raise ValueError(f"native game {self.id!r} needs make_batched")

    @property
    def is_discrete(self) -> bool:
        """True for a ``Discrete`` action space, False for a ``Box``."""
        return isinstance(self.action_space, gymnasium.spaces.Discrete)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe description (used by ``games show --json``)."""
        return {
            "id": self.id,
            "description": self.description,
            "api": self.api,
            "gym_id": self.gym_id,
            "batched": self.make_batched is not None,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "variants": self.variant_space.to_json(),
        }


def space_to_json(space: gymnasium.spaces.Space) -> dict[str, Any]:
    """Describe a Box or Discrete space as JSON."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gymnasium.spaces.Box):
        return {
            "type": "box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": space.low.tolist(),
            "high": space.high.tolist(),
        }
    return {"type": type(space).__name__}
