"""The recurrent ``policy.onnx`` checked against PyTorch over whole trials, state carried.

1. **A trial**: ``episodes`` episodes (more, up to :data:`MAX_TRIAL_EPISODES`, until it has
   :data:`TRIAL_MIN_STEPS` steps) of the export's variant in the game's gymnasium view,
   played by the torch policy (:func:`~gameadapt.ship.recurrent_graph.reference_step`) with
   its state, previous action and previous reward carried from step to step and from episode
   to episode (reset once, at the start: a new level). The actions played are drawn with
   seeded uniform noise (the graph's own ``action`` in a sampled export, the same formula
   otherwise), so ``prev_action`` takes every kind of value a game feeds.
2. **ONNX Runtime over the trial**, one step at a time (batch 1): the same observations,
   previous actions, rewards and episode starts, and *its own* ``state_out`` fed back as
   ``state``; every output of every step against PyTorch's (so drift would show).
3. **The trial as one batch** (PyTorch's states as the ``state`` input).
4. **Breadth**: the game's observations (and far-out ones) with random states, previous
   actions (``-1`` / the center included), rewards and starts; batch N, 1 and 37.

Tolerances and the discrete-action rule are :class:`~gameadapt.ship.verify.Comparison`'s,
except for ``value`` (a return estimate, as large as the game's returns), which is allowed
:data:`~gameadapt.ship.verify.TOLERANCE` times ``max(1, its largest magnitude)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..game import GameSpec
from ..learn.policy import ActionHead
from ..learn.recurrent import RecurrentPolicy
from ..variants import Variant
from .formats import NOISE_INPUT, RECURRENT_INPUTS
from .graphs import noise_action, noise_size
from .recurrent_graph import no_previous_action, reference_step
from .verify import (
    FAR_OUT_SAMPLES,
    MAX_EPISODE_STEPS,
    TOLERANCE,
    Comparison,
    action_scores,
    check_model,
    run,
    session,
    uniform_noise,
)

TRIAL_EPISODES = 3
TRIAL_MIN_STEPS = 100
MAX_TRIAL_EPISODES = 50
Arrays = dict[str, np.ndarray]


@dataclass
class Trial:
    """Every step of a trial: the graph's inputs (``state``: PyTorch's) and PyTorch's
    outputs, each ``[T, ...]``; ``noise`` the uniform numbers drawn at each step."""

    feeds: Arrays
    expected: Arrays
    noise: np.ndarray
    episodes: int


def reference(policy: RecurrentPolicy, feeds: Arrays, sampled: bool) -> Arrays:
    """PyTorch's outputs for a batch of the graph's inputs."""
    tensors = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in feeds.items()}
    out = reference_step(policy, tensors["observation"], tensors["prev_action"],
                         tensors["prev_reward"], tensors["episode_start"], tensors["state"],
                         tensors[NOISE_INPUT] if sampled else None)
    return {name: value.detach().numpy() for name, value in out.items()}


def played_action(policy: ActionHead, out: Arrays, noise: np.ndarray, sampled: bool
                  ) -> np.ndarray:
    """The action the trial plays: the sampled ``action`` output, or (greedy graph) the same
    noise formula applied to the distribution outputs, as the env takes it."""
    if sampled:
        return out["action"]
    names = ("logits",) if policy.discrete else ("mean", "log_std")
    dist = tuple(torch.from_numpy(out[name]) for name in names)
    with torch.no_grad():
        return policy.to_env_action(noise_action(policy, dist, torch.from_numpy(noise))).numpy()


def play_trial(policy: RecurrentPolicy, spec: GameSpec, variant: Variant, episodes: int,
               seed: int, sampled: bool) -> Trial:
    """At least ``episodes`` episodes of ``variant`` played by PyTorch, its state carried
    (see 1.)."""
    generator = np.random.default_rng(seed)
    carried: Arrays = {"prev_action": no_previous_action(policy, 1).numpy(),
                       "prev_reward": np.zeros(1, np.float32),
                       "state": policy.initial_state(1).numpy()}
    steps: list[tuple[Arrays, Arrays, np.ndarray]] = []

    def episode(env: Any, index: int) -> int:
        nonlocal carried
        carried = _play_episode(policy, env, seed + index, carried, generator, sampled, steps)
        return len(steps)

    return _stack(steps, sampled, play_episodes(spec, variant, episodes, episode))


def play_episodes(spec: GameSpec, variant: Variant, episodes: int,
                  episode: Callable[[Any, int], int]) -> int:
    """Call ``episode(env, index)`` (it plays episode ``index`` in ``env``, one gymnasium
    view of ``variant`` for the whole trial, and returns the trial's steps so far) at least
    ``episodes`` times, more until :data:`TRIAL_MIN_STEPS` steps (at most
    :data:`MAX_TRIAL_EPISODES`); returns the episodes played."""
    env = spec.make_env(variant)
    try:
        played, steps = 0, 0
        while played < episodes or (steps < TRIAL_MIN_STEPS and played < MAX_TRIAL_EPISODES):
            steps = episode(env, played)
            played += 1
    finally:
        env.close()
    return played


def _play_episode(policy: RecurrentPolicy, env: Any, seed: int, carried: Arrays,
                  generator: np.random.Generator, sampled: bool,
                  steps: list[tuple[Arrays, Arrays, np.ndarray]]) -> Arrays:
    """One episode: appends every step's feeds, outputs and noise; returns what carries on."""
    offset = int(getattr(env.action_space, "start", 0)) if policy.discrete else 0
    observation, _ = env.reset(seed=seed)
    for step in range(MAX_EPISODE_STEPS):
        noise = generator.random((1, noise_size(policy))).astype(np.float32)
        feeds = {"observation": np.asarray(observation, np.float32).reshape(1, -1), **carried,
                 "episode_start": np.full(1, float(step == 0), np.float32), NOISE_INPUT: noise}
        out = reference(policy, feeds, sampled)
        action = played_action(policy, out, noise, sampled)
        steps.append((feeds, out, noise))
        observation, reward, terminated, truncated, _ = env.step(
            int(action[0]) + offset if policy.discrete else action[0])
        carried = {"prev_action": action, "state": out["state_out"],
                   "prev_reward": np.full(1, float(reward), np.float32)}
        if terminated or truncated:
            break
    return carried


def _stack(steps: list[tuple[Arrays, Arrays, np.ndarray]], sampled: bool, episodes: int
           ) -> Trial:
    names = [*RECURRENT_INPUTS, *([NOISE_INPUT] if sampled else [])]
    feeds = {name: np.concatenate([feed[name] for feed, _, _ in steps]) for name in names}
    expected = {name: np.concatenate([out[name] for _, out, _ in steps]) for name in steps[0][1]}
    return Trial(feeds, expected, np.concatenate([noise for _, _, noise in steps]), episodes)


def run_carried(sess: Any, feeds: Arrays) -> Arrays:
    """ONNX Runtime over a sequence one step at a time, its own ``state_out`` fed back."""
    state = feeds["state"][:1]
    outputs: list[Arrays] = []
    for t in range(len(feeds["observation"])):
        got = run(sess, {**{name: value[t:t + 1] for name, value in feeds.items()},
                         "state": state})
        outputs.append(got)
        state = got["state_out"]
    return {name: np.concatenate([out[name] for out in outputs]) for name in outputs[0]}


def probe_observations(observations: np.ndarray, generator: np.random.Generator
                       ) -> np.ndarray:
    """The game's observations and :data:`FAR_OUT_SAMPLES` far-out ones (for graphs without
    a normaliser: 50 times as large, plus noise)."""
    far = observations[:FAR_OUT_SAMPLES] * 50.0 + generator.normal(
        0.0, 10.0, observations[:FAR_OUT_SAMPLES].shape)
    return np.concatenate([observations, far]).astype(np.float32)


def random_actions(policy: ActionHead, count: int, generator: np.random.Generator,
                   none: bool) -> np.ndarray:
    """Played actions as a game feeds them: indices, or env actions within the bounds
    (and, ``none``, ``-1`` / the center: "no action yet"; else some out of bounds, which
    the graph clips as the env does)."""
    if policy.discrete:
        return generator.integers(-1 if none else 0, policy.action_dim, count).astype(np.int64)
    low, high = policy.action_low.numpy(), policy.action_high.numpy()
    bounded = np.isfinite(low) & np.isfinite(high)
    margin = 0.0 if none else 0.25 * np.where(bounded, high - low, 0.0)
    spread = generator.uniform(np.where(bounded, low - margin, -3.0),
                               np.where(bounded, high + margin, 3.0), (count, policy.action_dim))
    special = policy.action_center.numpy() if none else np.clip(spread, low, high)
    return np.where(generator.random((count, 1)) < 0.1, special, spread).astype(np.float32)


def random_inputs(policy: RecurrentPolicy, observations: np.ndarray, seed: int = 0) -> Arrays:
    """The game's observations (and far-out ones) with random states, previous actions,
    rewards and episode starts (see 4.)."""
    generator = np.random.default_rng(seed)
    obs = probe_observations(observations, generator)
    count = len(obs)
    return {"observation": obs, "prev_action": random_actions(policy, count, generator, True),
            "prev_reward": generator.normal(0.0, 2.0, count).astype(np.float32),
            "episode_start": (generator.random(count) < 0.2).astype(np.float32),
            "state": generator.uniform(-1.0, 1.0, (count, policy.hidden_size)).astype(np.float32),
            NOISE_INPUT: uniform_noise(policy, count, seed)}


def verify_recurrent(policy: RecurrentPolicy, path: Path, spec: GameSpec, variant: Variant,
                     observations: np.ndarray, sampled: bool = False,
                     episodes: int = TRIAL_EPISODES, seed: int = 0) -> dict[str, Any]:
    """The recurrent ``policy.onnx`` against PyTorch (see the module doc)."""
    check_model(path)
    sess = session(path)
    trial = play_trial(policy, spec, variant, episodes, seed, sampled)
    noise = trial.noise if sampled else None
    compare = comparer(policy, sampled)
    carried = compare(trial.expected, run_carried(sess, trial.feeds), noise)
    batched = compare(trial.expected, run(sess, trial.feeds), noise)
    probe = random_inputs(policy, observations, seed)
    if not sampled:
        del probe[NOISE_INPUT]
    breadth = Comparison()
    for size in (len(probe["observation"]), 1, 37):
        part = {name: value[:size] for name, value in probe.items()}
        breadth = breadth.worst(compare(reference(policy, part, sampled), run(sess, part),
                                        part.get(NOISE_INPUT)))
    worst = carried.worst(batched).worst(breadth)
    return {"kind": "recurrent", "episodes": trial.episodes,
            "steps": int(len(trial.feeds["observation"])),
            "samples": int(len(probe["observation"])), "far_out_samples": FAR_OUT_SAMPLES,
            "batch_sizes": [int(len(probe["observation"])), 1, 37], "tolerance": TOLERANCE,
            "value_tolerance": f"{TOLERANCE:g} x max(1, largest |value| of PyTorch)",
            "action": "sampled" if sampled else "greedy", "onnx_checker": True,
            "sequence": {"batch_size": 1, "state": "ONNX Runtime's own state_out fed back",
                         **carried.to_json()},
            "sequence_batched": {"batch_size": int(len(trial.feeds["observation"])),
                                 **batched.to_json()},
            "random_inputs": breadth.to_json(), **worst.to_json()}


def comparer(policy: ActionHead, sampled: bool, scaled: Sequence[str] = ("value",)
             ) -> Callable[[Arrays, Arrays, np.ndarray | None], Comparison]:
    """``compare(expected, got, noise)`` with the policy's action rule; the ``scaled``
    outputs (``value``: returns can be large) within :data:`TOLERANCE` times ``max(1, the
    output's largest magnitude)``."""
    def compare(expected: Arrays, got: Arrays, noise: np.ndarray | None) -> Comparison:
        rest = {name: value for name, value in expected.items() if name not in scaled}
        result = Comparison.of(rest, got, TOLERANCE, discrete_action=policy.discrete,
                               scores=action_scores(expected, noise if sampled else None))
        for name in (name for name in scaled if name in expected):
            scale = max(1.0, float(np.abs(expected[name]).max(initial=0.0)))
            result = result.worst(Comparison.of({name: expected[name]}, got,
                                                 TOLERANCE * scale))
        return result
    return compare
