"""Game specs and the batched-game protocol that the trainer steps.

A game plugin registers a :class:`GameSpec`. Every game has a single-instance
``gymnasium.Env`` view (numpy only, no torch) made by ``make_env(variant)``. A *native*
game also has ``make_batched(variants, envs_per_task, device, first_task=0)``, which returns a
:class:`BatchedGame` that steps a ``[tasks, envs]`` batch of different variants at once as
torch tensors on any device. Games without it are stepped through ``gymnasium.vector``.

A *multi-agent* game (``api="pettingzoo"``) also names its ``agents``, the ``learner`` the
policy drives by default, a ``make_parallel_env(variant)`` factory for its PettingZoo
``ParallelEnv`` view and an ``opponent(env, agent, observation, variant)`` function that picks the
scripted action of an agent the policy does not drive (its behaviour is part of the variant's
rules). Its ``make_env`` is the learner's view (see :mod:`gameadapt.multiagent`), and its
``make_batched`` takes a fourth argument, the controlled ``agents``: every env then has one
row per controlled agent (see :class:`BatchedGame`).

A game may define *success* (``GameSpec.success``, e.g. "reached the goal"): its batched
view then reports it in :attr:`BatchedStep.success`, and its single views follow gymnasium's
convention (gymnasium-robotics, Stable-Baselines3): ``info["is_success"]`` (a bool) in the
info of the step that ends the episode (per agent in the PettingZoo view). A game may also
name a *reference* policy (``GameSpec.reference``) that sees the hidden variant: an upper
bound for the evaluation (see :mod:`gameadapt.train.upper_bound`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

import gymnasium
import numpy as np

from .variants import Variant, VariantSpace

if TYPE_CHECKING:
    import torch

GameApi = Literal["native", "gymnasium", "pettingzoo"]
GAME_APIS: tuple[str, ...] = ("native", "gymnasium", "pettingzoo")


class BatchedStep(NamedTuple):
    """What :meth:`BatchedGame.step` returns; every tensor is shaped ``[tasks, envs, ...]``.

    ``success`` (bool ``[M, E]``) is True on the step where an env's episode ends
    successfully, so only where ``terminated`` or ``truncated`` is True on that step; None
    when the game reports no success (a view built with the first four fields only).
    """

    observation: torch.Tensor  # float32 [M, E, obs_dim]
    reward: torch.Tensor  # float32 [M, E]
    terminated: torch.Tensor  # bool [M, E]
    truncated: torch.Tensor  # bool [M, E]
    success: torch.Tensor | None = None  # bool [M, E], or None: the game reports no success


class BatchedGame(Protocol):
    """``num_tasks`` variants x ``envs_per_task`` copies each, stepped as one batch of tensors.

    In a multi-agent game each *row* is one controlled agent of an env: ``envs_per_task``
    counts rows, ``agents`` (the controlled agents, learner first) gives their order within
    an env, and row ``e * len(agents) + c`` is agent ``agents[c]`` of env ``e``.

    Each env plays one episode per :meth:`reset`. Once an env's episode has ended
    (terminated or truncated), later steps leave its observation unchanged and give it
    reward 0 and ``terminated = truncated = False`` (and ``success = False``); its actions
    are ignored. A game that defines success returns ``success`` in every step: True only on
    the step that ends an episode successfully, exactly where its single view's info of that
    step has ``is_success`` True.
    Env ``(m, e)`` draws its randomness from the stream ``stream_key(seed, (f + m) * E + e)``
    (see :mod:`gameadapt.hashrandom`), where ``f`` is the global index of the batch's first
    task (``make_batched(..., first_task=f)``, 0 by default), so it replays exactly in the
    single-instance view reset with ``seed=seed, options={"stream": (f + m) * E + e}`` and a
    slice of a meta-batch replays the streams its tasks have in the whole batch.
    Callers close a batched game when done (``contextlib.closing``).
    """

    num_tasks: int
    envs_per_task: int
    horizon: int  # the longest episode any env of the batch can have
    device: torch.device
    agents: tuple[str, ...]  # the controlled agents, learner first (() for single-agent games)

    def reset(self, seed: int) -> torch.Tensor:
        """Start a new episode in every env; return observations ``[M, E, obs_dim]``."""
        ...

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Apply actions (``[M, E]`` long for discrete games, ``[M, E, act_dim]`` float)."""
        ...

    def close(self) -> None:
        """Release what the batch holds (envs, processes); a no-op for tensor games."""
        ...


MakeEnv = Callable[..., gymnasium.Env]
MakeBatched = Callable[..., BatchedGame]
MakeParallelEnv = Callable[..., Any]  # (variant=None, render_mode=None) -> pettingzoo.ParallelEnv
Opponent = Callable[[Any, str, Any, Variant], Any]  # (parallel_env, agent, obs, variant) -> action
ReferencePolicy = Callable[[Any, Any, Variant], Any]  # (env, obs, variant) -> action
TaskLabelKind = Literal["category", "number", "angle"]


@dataclass(frozen=True)
class TaskLabel:
    """What tells a game's variants apart for a reader: a name, its value for a variant
    (``value(variant)``: a variant parameter or a quantity derived from one), and its kind
    (``category``; ``number``; ``angle`` in degrees, which wraps around). Pictures of a
    learnt task space (``gameadapt latents``) colour each variant by it."""

    name: str
    value: Callable[[Variant], Any]
    kind: TaskLabelKind = "category"


@dataclass(frozen=True)
class GameSpec:
    """Everything the engine needs to know about a game.

    ``make_env(variant, render_mode=None)`` builds the single-instance gymnasium view;
    ``make_batched`` (native games only) builds the batched tensor view;
    ``gym_id`` is the id under which the single view is registered with gymnasium, if any.
    Multi-agent games (``api="pettingzoo"``) fill ``agents``, ``learner``,
    ``make_parallel_env`` and ``opponent`` (see the module docstring).
    ``max_episode_steps`` bounds an episode for games stepped in a Python loop whose envs do
    not declare a limit themselves (wrapped PettingZoo games).
    ``success`` says in a short phrase what a successful episode is ("reached the goal"; None
    when the game defines no success): the views report it as ``BatchedStep.success`` and
    ``info["is_success"]`` on an episode's last step. ``reference(env, observation, variant)
    -> action`` is a scripted policy that knows the variant (an upper bound): ``env`` is the
    single view made by ``make_env(variant)`` (the learner's view of a multi-agent game), whose
    (unwrapped) state it may read, and the action is what that env's ``step`` takes; it is
    deterministic given the env's state. ``task_label`` names what tells the variants apart
    (:class:`TaskLabel`), for pictures of a learnt task space.
    """

    id: str
    description: str
    api: GameApi
    observation_space: gymnasium.spaces.Space  # policies take a flat float Box (train.spacecheck)
    action_space: gymnasium.spaces.Space
    variant_space: VariantSpace
    make_env: MakeEnv
    make_batched: MakeBatched | None = None
    gym_id: str | None = None
    agents: tuple[str, ...] = ()
    learner: str | None = None
    make_parallel_env: MakeParallelEnv | None = None
    opponent: Opponent | None = None
    max_episode_steps: int | None = None
    success: str | None = None
    reference: ReferencePolicy | None = None
    task_label: TaskLabel | None = None

    def __post_init__(self) -> None:
        if self.api not in GAME_APIS:
            raise ValueError(f"game {self.id!r}: api must be one of {GAME_APIS}, not {self.api!r}")
        if self.api == "native" and self.make_batched is None:
            raise ValueError(f"native game {self.id!r} needs make_batched")
        if self.is_multi_agent:
            if len(set(self.agents)) != len(self.agents) or len(self.agents) < 2:
                raise ValueError(f"multi-agent game {self.id!r} needs two or more distinct agents")
            if self.learner not in self.agents:
                raise ValueError(f"game {self.id!r}: learner {self.learner!r} is not one of its "
                                 f"agents {list(self.agents)}")
            if self.make_parallel_env is None or self.opponent is None:
                raise ValueError(f"multi-agent game {self.id!r} needs make_parallel_env and "
                                 f"opponent")

    @property
    def is_multi_agent(self) -> bool:
        """True for a PettingZoo game."""
        return self.api == "pettingzoo"

    def controlled_agents(self, share_policy: bool = False) -> tuple[str, ...]:
        """The agents one policy drives: the learner, or with ``share_policy`` all (learner first)."""
        if not self.is_multi_agent:
            return ()
        assert self.learner is not None
        if not share_policy:
            return (self.learner,)
        return (self.learner,) + tuple(a for a in self.agents if a != self.learner)

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
            "agents": list(self.agents) or None,
            "learner": self.learner,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "variants": self.variant_space.to_json(),
            "success": self.success,
            "reference": self.reference is not None,
        }


def flat_size(space: gymnasium.spaces.Space) -> int:
    """The number of values of one element of a Box space (0 for a space without a shape)."""
    return int(np.prod(space.shape)) if space.shape else 0


def check_render_mode(metadata: dict[str, Any], render_mode: str | None) -> None:
    """Raise ValueError unless ``render_mode`` is None or one of ``metadata["render_modes"]``."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(f"render_mode must be one of {metadata['render_modes']} or None, "
                         f"not {render_mode!r}")


def show_text(render_mode: str | None, text: str) -> str | None:
    """A text render's result: printed (and ``None`` returned) in ``human`` mode, else ``text``."""
    if render_mode == "human":
        print(text)
        return None
    return text


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


def frame(env: Any, observation: Any, text_mode: bool) -> str:
    """The env's text rendering, or the observation vector when it has none."""
    if text_mode:
        return str(env.render()).rstrip("\n")
    return "observation " + as_text(observation)


def as_text(value: Any) -> str:
    """A scalar as it is, an array as ``[+0.123, ...]``."""
    array = np.asarray(value)
    if array.ndim == 0:
        return str(array.item())
    return "[" + ", ".join(f"{x:+.3f}" for x in array.ravel().tolist()) + "]"
