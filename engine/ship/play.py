"""Play an exported policy in a game's gymnasium view with ONNX Runtime (``gameadapt play``).

In a multi-agent game the view is the learner's; the other agents named in the manifest's
``agents`` (parameter sharing) are driven by the same ONNX policy (its ``action`` output,
each with its own memory if it is recurrent or context), and the rest act by the game's
scripted opponent.

Numpy and onnxruntime only: this module never imports torch, so it shows what a game
build sees. Episode ``i`` is reset with seed ``seed + i``; actions are the ``action``
output (greedy, or for a sampled export drawn with numpy noise), or with ``sample`` draws
from the policy (a sampled export's own ``action``; else from its distribution outputs),
numpy generator seeded with ``seed + i``. A recurrent export carries its memory (state,
previous action and reward) over all the episodes: it is reset once, at the start, as at a
new level, and each episode starts with ``episode_start`` 1. A context export carries its
posterior the same way: the sums start at the prior once, every step's outcome goes through
``encoder.onnx``, and ``z`` follows the manifest's ``context.z_update``: made from the
current posterior before every step, or at each episode's start and held (a sampled ``z``'s
normals, drawn once per episode, from a generator seeded with ``(seed, 1)``). With
``adapt_online`` the
weights are adapted after every episode
with ``adapter.onnx`` on that episode (reward-to-go advantages) and the next episode is
played with ``policy_weights.onnx`` and the new weights. Online adaptation always samples:
a policy gradient needs exploration (at the greedy Gaussian mean the gradient of
log-probability with respect to the mean is zero, so greedy data would not adapt it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import GameadaptError
from ..files import restore_aside
from ..game import GameSpec, as_text, frame, space_to_json
from ..multiagent import ControlledAgentEnv
from ..variants import Variant
from .onnxpolicy import (
    LevelMemory,
    OnnxPolicy,
    PolicyLoadError,
    Weights,
    reward_to_go_advantages,
)

LATENT_STREAM = 1  # a context level's generator is seeded with (seed, LATENT_STREAM)


@dataclass
class Episode:
    """One played episode: observations, env actions, policy-unit actions and rewards."""

    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)  # as given to env.step
    policy_actions: list[Any] = field(default_factory=list)  # as the adapter takes them
    rewards: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        """The undiscounted return."""
        return float(sum(self.rewards))


def load_policy(folder: Any) -> OnnxPolicy:
    """:meth:`OnnxPolicy.load` with its errors as :class:`GameadaptError`; an export whose
    replacement was killed midway gets its aside copy back first (:func:`restore_aside`)."""
    restore_aside(folder)
    try:
        return OnnxPolicy.load(folder)
    except PolicyLoadError as exc:
        raise GameadaptError(str(exc)) from None


def check_compatible(policy: OnnxPolicy, spec: GameSpec, env: Any) -> None:
    """Raise a one-line error unless the policy was made for this game and its spaces."""
    if policy.game != spec.id:
        raise GameadaptError(f"{policy.folder} is a policy for game {policy.game!r}, "
                             f"not {spec.id!r}")
    for what, space, expected in (("observation", env.observation_space, policy.observation_space),
                                  ("action", env.action_space, policy.action_space)):
        actual = space_to_json(space)
        if not _same_space(actual, expected):
            raise GameadaptError(f"the {what} space of {spec.id!r} ({_brief(actual)}) differs "
                                 f"from the policy's ({_brief(expected)})")


def play(policy: OnnxPolicy, spec: GameSpec, variant: Variant, *, episodes: int = 5,
         seed: int = 0, render: bool = False, sample: bool = False, adapt_online: bool = False,
         echo: Callable[[str], None] = print) -> list[Episode]:
    """Play ``episodes`` episodes of ``variant``; echo every return (and frames)."""
    if adapt_online and policy.has_memory:
        kind, where = ("recurrent", "its state") if policy.recurrent else \
            ("context", "its task posterior")
        raise GameadaptError(f"--adapt-online: {policy.folder} is a {kind} export, which "
                             f"adapts in {where} as it plays; play it without --adapt-online")
    if adapt_online and not policy.has_adapter:
        raise GameadaptError(f"--adapt-online needs an adapter: {policy.folder} was exported "
                             f"without --with-adapter")
    text_mode = render and "ansi" in _render_modes(spec, variant)
    env = make_play_env(policy, spec, variant, "ansi" if text_mode else None, seed)
    try:
        return _play(policy, spec, env, variant, episodes, seed, Rendering(render, text_mode, echo),
                     sample or adapt_online, adapt_online)
    except PolicyLoadError as exc:
        raise GameadaptError(str(exc)) from None
    finally:
        env.close()


def make_play_env(policy: OnnxPolicy, spec: GameSpec, variant: Variant,
                  render_mode: str | None, seed: int = 0) -> Any:
    """The learner's gymnasium view; in a multi-agent game every agent the manifest names
    is also driven by ``policy`` (its noise, if any, from a generator seeded with ``seed``),
    the others by the game's opponent."""
    if not spec.is_multi_agent:
        return spec.make_env(variant, render_mode=render_mode)
    driven = list(policy.manifest.get("agents") or [spec.learner])
    unknown = [agent for agent in driven if agent not in spec.agents]
    if unknown or spec.learner not in driven:
        raise GameadaptError(f"{policy.folder} drives agents {driven}, which do not fit game "
                             f"{spec.id!r} (agents {list(spec.agents)}, learner {spec.learner!r})")
    assert spec.make_parallel_env is not None and spec.opponent is not None
    assert spec.learner is not None
    opponent = spec.opponent
    drivers = Drivers(policy, [agent for agent in driven if agent != spec.learner],
                      np.random.default_rng(seed))

    def act(env: Any, agent: str, observation: Any, variant: Variant) -> Any:
        if agent in driven:
            return drivers.act(agent, observation)
        return opponent(env, agent, observation, variant)

    parallel_env = spec.make_parallel_env(variant, render_mode)
    if policy.has_memory:
        parallel_env = TappedParallelEnv(parallel_env, drivers)
    return ControlledAgentEnv(parallel_env, spec.learner, act, variant)


class Drivers:
    """The agents besides the learner that the policy drives; a recurrent or context policy
    keeps a memory for each over the whole level (a new episode at each reset, every step's
    reward and next observation told)."""

    def __init__(self, policy: OnnxPolicy, agents: list[str], rng: np.random.Generator) -> None:
        self.policy = policy
        self.rng = rng
        self.memories = {agent: policy.new_level(rng=rng) for agent in agents} \
            if policy.has_memory else {}

    def act(self, agent: str, observation: Any) -> Any:
        """The env action of ``agent`` (the policy's ``action`` output)."""
        obs = np.asarray(observation, np.float32).reshape(-1)
        return _choose(self.policy, obs, None, self.rng, self.memories.get(agent))[0]

    def new_episode(self) -> None:
        for memory in self.memories.values():
            memory.new_episode()

    def outcome(self, observations: dict[str, Any], rewards: dict[str, Any]) -> None:
        """A step's next observations and rewards, told to every memory."""
        for agent, memory in self.memories.items():
            memory.reward(float(rewards.get(agent, 0.0)), observations.get(agent))


class TappedParallelEnv:
    """A ``ParallelEnv`` that tells :class:`Drivers` of every reset and every step's
    observations and rewards (everything else is the env's own)."""

    def __init__(self, env: Any, drivers: Drivers) -> None:
        self._env = env
        self.drivers = drivers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        result = self._env.reset(*args, **kwargs)
        self.drivers.new_episode()
        return result

    def step(self, actions: dict[str, Any]) -> Any:
        result = self._env.step(actions)
        self.drivers.outcome(result[0], result[1])
        return result


@dataclass(frozen=True)
class Rendering:
    """Whether and how to print frames, and where lines go."""

    render: bool
    text_mode: bool
    echo: Callable[[str], None]


def _play(policy: OnnxPolicy, spec: GameSpec, env: Any, variant: Variant, episodes: int,
          seed: int, rendering: Rendering, sample: bool, adapt_online: bool) -> list[Episode]:
    check_compatible(policy, spec, env)
    echo = rendering.echo
    echo(f"playing {spec.id} {variant} with {policy.folder} "
         f"({'sampled' if sample else policy.action_mode} actions{_carried(policy)})")
    weights = policy.load_weights() if adapt_online else None
    memory = (policy.new_level(rng=np.random.default_rng([seed, LATENT_STREAM]))
              if policy.has_memory else None)  # reset once: a new level
    gamma = float((policy.manifest.get("adapter") or {}).get("gamma") or 0.99)
    played = []
    for index in range(episodes):
        rng = np.random.default_rng(seed + index) if sample or policy.takes_noise else None
        episode = _play_episode(policy, env, seed + index, weights, rng, memory, sample,
                                rendering)
        played.append(episode)
        echo(f"episode {index + 1}: return {episode.total:.3f} ({len(episode.rewards)} steps)")
        if weights is not None:
            advantages = reward_to_go_advantages([episode.rewards], gamma)
            weights = policy.adapt(np.stack(episode.observations),
                                   np.asarray(episode.policy_actions), advantages, weights=weights)
    mean = float(np.mean([e.total for e in played])) if played else float("nan")
    echo(f"mean return over {len(played)} episodes: {mean:.3f}")
    return played


def _carried(policy: OnnxPolicy) -> str:
    """What ``play``'s first line says the policy carries across the episodes."""
    if policy.recurrent:
        return ", state carried across the episodes"
    if policy.context:
        made = "every step" if policy.z_update == "step" else "each episode's start"
        return (f", posterior carried across the episodes, latent {policy.latent_mode}, "
                f"z made at {made}")
    return ""


def _play_episode(policy: OnnxPolicy, env: Any, seed: int, weights: Weights | None,
                  rng: np.random.Generator | None, memory: LevelMemory | None, sample: bool,
                  rendering: Rendering) -> Episode:
    episode = Episode()
    observation, _ = env.reset(seed=seed)
    if memory is not None:
        memory.new_episode()
    if rendering.render:
        rendering.echo(frame(env, observation, rendering.text_mode))
    done = False
    while not done:
        obs = np.asarray(observation, dtype=np.float32).reshape(-1)
        action, policy_action = _choose(policy, obs, weights, rng, memory, sample)
        observation, reward, terminated, truncated, _ = env.step(action)
        if memory is not None:
            memory.reward(float(reward), observation)
        episode.observations.append(obs)
        episode.actions.append(action)
        episode.policy_actions.append(policy_action)
        episode.rewards.append(float(reward))
        done = bool(terminated or truncated)
        if rendering.render:
            rendering.echo(f"step {len(episode.rewards)}: action {as_text(action)}  "
                           f"reward {float(reward):+.3f}")
            rendering.echo(frame(env, observation, rendering.text_mode))
    return episode


def _choose(policy: OnnxPolicy, obs: np.ndarray, weights: Weights | None,
            rng: np.random.Generator | None, memory: LevelMemory | None = None,
            sample: bool = False) -> tuple[Any, Any]:
    """``(env action, policy-unit action)``: the ``action`` output (a sampled export's drawn
    with ``rng``), or with ``sample`` (or ``weights``) drawn from the distribution outputs."""
    if weights is not None or (sample and not policy.takes_noise):
        assert rng is not None
        action, policy_action = policy.sample(obs, rng, weights, memory)
    else:
        out = policy.outputs(obs, memory, rng=rng)
        action = out["action"]
        if policy.discrete:
            policy_action = action
        else:  # the greedy mean, or a sample mapped back from the env (before clipping)
            policy_action = policy.to_policy_units(action) if policy.takes_noise else out["mean"]
    if policy.discrete:  # an index in [0, n); the env's action is start + index
        return int(policy_action) + int(policy.action_space.get("start", 0)), int(policy_action)
    return np.asarray(action, np.float32), np.asarray(policy_action, np.float32)


def _render_modes(spec: GameSpec, variant: Variant) -> list[str]:
    probe = spec.make_env(variant)
    try:
        return list(probe.metadata.get("render_modes", []))
    finally:
        probe.close()


def _same_space(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    if actual.get("type") != expected.get("type"):
        return False
    if actual["type"] == "discrete":
        return int(actual["n"]) == int(expected.get("n", -1)) and \
            int(actual.get("start", 0)) == int(expected.get("start", 0))
    if list(actual.get("shape", [])) != list(expected.get("shape", [])):
        return False
    try:
        return all(np.allclose(np.asarray(actual[k], dtype=np.float64),
                               np.asarray(expected[k], dtype=np.float64), rtol=1e-6, atol=0,
                               equal_nan=True) for k in ("low", "high"))
    except (KeyError, TypeError, ValueError):
        return False


def _brief(space: dict[str, Any]) -> str:
    if space.get("type") == "discrete":
        return f"Discrete({space.get('n')})"
    return f"{space.get('type')} shape {space.get('shape')}"
