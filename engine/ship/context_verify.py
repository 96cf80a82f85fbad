"""A context export's ``policy.onnx`` and ``encoder.onnx`` checked against PyTorch over whole
trials, the posterior's sums carried.

1. **A trial**, as :mod:`~gameadapt.ship.recurrent_verify` plays one (at least 3 episodes
   and 100 steps of the export's variant in the game's gymnasium view, one level: the sums
   start at the prior once), played by the torch policy
   (:func:`~gameadapt.ship.context_graph.reference_policy`, ``reference_encoder``): ``z``
   made from the sums so far by the policy's ``z_update`` rule (before every step, or at
   each episode's start; the export's latent mode, the standard normals ``e`` drawn from a
   seeded generator once per episode), actions drawn with seeded noise.
2. **ONNX Runtime over the trial**, one step at a time (batch 1): the same observations,
   actions and rewards, *its own* ``precision_sum_out``/``weighted_sum_out`` fed back as the
   sums, its own ``posterior_mean``/``posterior_variance`` making ``z`` by the same rule
   (with the same ``e``); every output of both graphs, and ``z``, against PyTorch's.
3. **The trial as one batch** through each graph (PyTorch's ``z`` and sums as inputs).
4. **The incremental posterior equals the batch one**: ONNX Runtime's sums at the start of
   every episode and at the end of the trial against the engine's batch form over the same
   transitions (:func:`~gameadapt.learn.posterior.episode_start_sums`, what training acts
   on with ``z_update="episode"``, and the prior plus a direct sum of ``policy.factors``);
   with ``z_update="step"`` also its sums before every step against
   :func:`~gameadapt.learn.posterior.step_sums` (what training acts on then).
5. **Breadth**: the game's observations (and far-out ones) with random ``z``, actions (some
   out of bounds), rewards and sums; batch N, 1 and 37.

Tolerances are :class:`~gameadapt.ship.verify.Comparison`'s (:data:`TOLERANCE`, the
discrete-action rule), except for :data:`SCALED`: ``value``, ``z``, the sums and the
posterior mean grow with the game's returns and with the transitions taken in (a factor's
precision is up to 10⁴), so they are allowed :data:`TOLERANCE` times ``max(1, their largest
magnitude)``, a relative 1e-5 (float32 sums of a few hundred terms added in another order
differ by about 1e-7 of their size).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..game import GameSpec
from ..learn.context_policy import ContextPolicy
from ..learn.posterior import episode_start_sums, step_sums
from ..variants import Variant
from .context_graph import latent, policy_units, reference_encoder, reference_policy, remakes_z
from .formats import ENCODER_INPUTS, LATENT_INPUT, NOISE_INPUT, SUM_NAMES
from .graphs import noise_size
from .recurrent_verify import (
    TRIAL_EPISODES,
    Arrays,
    comparer,
    play_episodes,
    played_action,
    probe_observations,
    random_actions,
)
from .verify import FAR_OUT_SAMPLES, MAX_EPISODE_STEPS, TOLERANCE, Comparison, check_model, run
from .verify import session as ort_session

SCALED = ("value", LATENT_INPUT, *SUM_NAMES, "precision_sum_out", "weighted_sum_out",
          "posterior_mean")
BATCH_SIZES = (1, 37)  # besides the whole probe


@dataclass
class ContextTrial:
    """Every step of a trial: both graphs' inputs (``z`` and the sums: PyTorch's) and
    PyTorch's outputs, ``[T, ...]``; ``starts`` the first step of each episode, ``normals``
    each episode's ``e`` (``None``: ``z`` is the posterior mean)."""

    acting: Arrays = field(default_factory=dict)
    acted: Arrays = field(default_factory=dict)
    encoding: Arrays = field(default_factory=dict)
    encoded: Arrays = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)
    normals: list[np.ndarray | None] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """The trial's steps, all episodes together."""
        return len(self.acting["observation"])


def _tensors(feeds: Arrays) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in feeds.items()}


def _arrays(values: dict[str, torch.Tensor]) -> Arrays:
    return {name: value.detach().numpy() for name, value in values.items()}


def reference_acting(policy: ContextPolicy, feeds: Arrays, sampled: bool) -> Arrays:
    """PyTorch's ``policy.onnx`` outputs for a batch of its inputs."""
    t = _tensors(feeds)
    return _arrays(reference_policy(policy, t["observation"], t[LATENT_INPUT],
                                    t[NOISE_INPUT] if sampled else None))


def reference_encoding(policy: ContextPolicy, feeds: Arrays) -> Arrays:
    """PyTorch's ``encoder.onnx`` outputs for a batch of its inputs."""
    t = _tensors(feeds)
    return _arrays(reference_encoder(policy, t["observation"], t["action"], t["reward"],
                                     t["next_observation"], (t[SUM_NAMES[0]], t[SUM_NAMES[1]])))


def prior(policy: ContextPolicy, batch: int = 1) -> Arrays:
    """The sums at a new level, as the encoder's inputs."""
    return dict(zip(SUM_NAMES, (value.numpy() for value in policy.prior_sums(batch))))


def make_z(sums: Arrays, posterior: Arrays | None, normal: np.ndarray | None) -> np.ndarray:
    """``z`` from the encoder's last posterior outputs (the prior's at a new level: mean 0,
    variance 1) and the episode's normals ``normal`` (``None``: the posterior mean)."""
    if posterior is None:
        mean = np.zeros_like(sums[SUM_NAMES[1]])
        variance = np.ones_like(sums[SUM_NAMES[0]])
    else:
        mean, variance = posterior["posterior_mean"], posterior["posterior_variance"]
    return latent(torch.from_numpy(mean), torch.from_numpy(variance),
                  None if normal is None else torch.from_numpy(normal)).numpy()


def play_trial(policy: ContextPolicy, spec: GameSpec, variant: Variant, episodes: int,
               seed: int, sampled: bool, latent_mode: str) -> ContextTrial:
    """At least ``episodes`` episodes of ``variant`` played by PyTorch, the sums carried
    (see 1.)."""
    generator = np.random.default_rng(seed)
    steps: list[tuple[Arrays, Arrays, Arrays, Arrays]] = []
    trial = ContextTrial()
    carried: dict[str, Any] = {"sums": prior(policy), "posterior": None}

    def episode(env: Any, index: int) -> int:
        normal = (generator.standard_normal((1, policy.latent_size)).astype(np.float32)
                  if latent_mode == "sample" else None)
        trial.starts.append(len(steps))
        trial.normals.append(normal)
        _play_episode(policy, env, seed + index, normal, carried, generator, sampled, steps)
        return len(steps)

    play_episodes(spec, variant, episodes, episode)
    for index, name in enumerate(("acting", "acted", "encoding", "encoded")):
        setattr(trial, name, {key: np.concatenate([step[index][key] for step in steps])
                              for key in steps[0][index]})
    return trial


def _play_episode(policy: ContextPolicy, env: Any, seed: int, normal: np.ndarray | None,
                  carried: dict[str, Any], generator: np.random.Generator, sampled: bool,
                  steps: list[tuple[Arrays, Arrays, Arrays, Arrays]]) -> None:
    """One episode, ``z`` made by the policy's rule with the episode's ``normal``: appends
    every step's feeds and outputs of both graphs; the sums and posterior carry on in
    ``carried``."""
    offset = int(getattr(env.action_space, "start", 0)) if policy.discrete else 0
    observation, _ = env.reset(seed=seed)
    z: np.ndarray
    for step in range(MAX_EPISODE_STEPS):
        if remakes_z(policy, step == 0):
            z = make_z(carried["sums"], carried["posterior"], normal)
        obs = np.asarray(observation, np.float32).reshape(1, -1)
        noise = generator.random((1, noise_size(policy))).astype(np.float32)
        acting = {"observation": obs, LATENT_INPUT: z, NOISE_INPUT: noise}
        acted = reference_acting(policy, acting, sampled)
        action = played_action(policy, acted, noise, sampled)
        observation, reward, terminated, truncated, _ = env.step(
            int(action[0]) + offset if policy.discrete else action[0])
        encoding = {"observation": obs, "action": action,
                    "reward": np.full(1, float(reward), np.float32),
                    "next_observation": np.asarray(observation, np.float32).reshape(1, -1),
                    **carried["sums"]}
        encoded = reference_encoding(policy, encoding)
        steps.append((acting if sampled else _without_noise(acting), acted, encoding, encoded))
        carried["sums"] = {name: encoded[f"{name}_out"] for name in SUM_NAMES}
        carried["posterior"] = encoded
        if terminated or truncated:
            break


def _without_noise(feeds: Arrays) -> Arrays:
    return {name: value for name, value in feeds.items() if name != NOISE_INPUT}


def run_carried(acting: Any, encoding: Any, trial: ContextTrial, policy: ContextPolicy
                ) -> tuple[Arrays, Arrays, Arrays, Arrays]:
    """ONNX Runtime over the trial one step at a time, its own sums fed back and its own
    posterior making ``z`` by the policy's rule (see 2.); returns both graphs' outputs (the
    first with the ``z`` it fed), its sums at each episode start and at the end, and its
    sums before every step."""
    sums, posterior, normal = prior(policy), None, None
    z = np.zeros((1, policy.latent_size), np.float32)  # made at step 0, a start
    acted: list[Arrays] = []
    encoded: list[Arrays] = []
    marks: list[Arrays] = []
    before: list[Arrays] = []
    for t in range(trial.steps):
        if t in trial.starts:
            marks.append(sums)
            normal = trial.normals[trial.starts.index(t)]
        if remakes_z(policy, t in trial.starts):
            z = make_z(sums, posterior, normal)
        before.append(sums)
        step = {name: value[t:t + 1] for name, value in trial.acting.items()}
        acted.append({**run(acting, {**step, LATENT_INPUT: z}), LATENT_INPUT: z})
        step = {name: value[t:t + 1] for name, value in trial.encoding.items()}
        posterior = run(encoding, {**step, **sums})
        encoded.append(posterior)
        sums = {name: posterior[f"{name}_out"] for name in SUM_NAMES}
    marks.append(sums)
    return _concat(acted), _concat(encoded), _concat(marks), _concat(before)


def _concat(rows: list[Arrays]) -> Arrays:
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def batch_posterior(policy: ContextPolicy, trial: ContextTrial) -> tuple[Arrays, Arrays]:
    """The engine's batch form of the trial's posterior: ``[K + 1, L]`` each sum at every
    episode start (``episode_start_sums``) and at the end (the prior plus a direct sum of
    every transition's factors); and ``[T, L]`` each sum before every step
    (``step_sums``)."""
    feeds = _tensors(trial.encoding)
    episode = torch.zeros(trial.steps, 1, dtype=torch.long)
    for index, start in enumerate(trial.starts):
        episode[start:] = index
    live = torch.ones(trial.steps, 1)
    with torch.no_grad():
        factors = policy.factors(policy.transition(
            feeds["observation"], policy_units(policy, feeds["action"]), feeds["reward"],
            feeds["next_observation"]).unsqueeze(1))  # [T, 1, L] each
        starts = episode_start_sums(factors, live, episode, len(trial.starts))
        marks = {name: torch.cat([start[:, 0], base + terms[:, 0].sum(0, keepdim=True)]).numpy()
                 for name, start, base, terms in zip(SUM_NAMES, starts, policy.prior_sums(1),
                                                     factors)}
        before = {name: value[:, 0].numpy() for name, value in zip(SUM_NAMES,
                                                                   step_sums(factors, live))}
    return marks, before


def incremental_check(policy: ContextPolicy, trial: ContextTrial, marks: Arrays,
                      before: Arrays, compare: Callable[[Arrays, Arrays, np.ndarray | None],
                                                        Comparison]
                      ) -> tuple[Comparison, dict[str, Any]]:
    """ONNX Runtime's sums (at the episode starts and the end; with ``z_update="step"``
    also before every step) against the batch posterior (see 4.), and the manifest's
    ``incremental_vs_batch``."""
    want_marks, want_before = batch_posterior(policy, trial)
    result = compare(want_marks, marks, None)
    per_step = policy.z_update == "step"
    if per_step:
        result = result.worst(compare(want_before, before, None))
    return result, {"against": "episode_start_sums at every episode start"
                               + (", step_sums before every step" if per_step else "")
                               + ", the prior plus a direct sum of policy.factors at the end",
                    "episode_starts": len(trial.starts),
                    "steps": trial.steps if per_step else 0, **result.to_json()}


def random_inputs(policy: ContextPolicy, observations: np.ndarray, sampled: bool,
                  seed: int = 0) -> tuple[Arrays, Arrays]:
    """Both graphs' inputs over the game's observations (and far-out ones) with random
    ``z``, actions, rewards and sums (precision from 1 to 10⁴; see 5.)."""
    generator = np.random.default_rng(seed)
    obs = probe_observations(observations, generator)
    count, size = len(obs), (len(obs), policy.latent_size)
    acting = {"observation": obs,
              LATENT_INPUT: generator.normal(0.0, 2.0, size).astype(np.float32)}
    if sampled:
        acting[NOISE_INPUT] = generator.random((count, noise_size(policy))).astype(np.float32)
    precision = np.exp(generator.uniform(0.0, np.log(1e4), size)).astype(np.float32)
    encoding = {"observation": obs, "action": random_actions(policy, count, generator, False),
                "reward": generator.normal(0.0, 2.0, count).astype(np.float32),
                "next_observation": obs[generator.permutation(count)],
                SUM_NAMES[0]: precision,
                SUM_NAMES[1]: (precision * generator.normal(0.0, 2.0, size)).astype(np.float32)}
    assert list(encoding) == list(ENCODER_INPUTS)
    return acting, encoding


def verify_context(policy: ContextPolicy, path: Path, encoder_path: Path, spec: GameSpec,
                   variant: Variant, observations: np.ndarray, sampled: bool = False,
                   latent_mode: str = "mean", episodes: int = TRIAL_EPISODES, seed: int = 0
                   ) -> dict[str, Any]:
    """A context export's two graphs against PyTorch (see the module doc)."""
    check_model(path)
    check_model(encoder_path)
    acting, encoding = ort_session(path), ort_session(encoder_path)
    trial = play_trial(policy, spec, variant, episodes, seed, sampled, latent_mode)
    compare = comparer(policy, sampled, SCALED)
    noise = trial.acting.get(NOISE_INPUT)
    got_acted, got_encoded, marks, before = run_carried(acting, encoding, trial, policy)
    carried = compare({**trial.acted, LATENT_INPUT: trial.acting[LATENT_INPUT]}, got_acted,
                      noise).worst(compare(trial.encoded, got_encoded, None))
    batched = compare(trial.acted, run(acting, trial.acting), noise).worst(
        compare(trial.encoded, run(encoding, trial.encoding), None))
    incremental, incremental_json = incremental_check(policy, trial, marks, before, compare)
    breadth = _breadth(policy, acting, encoding, observations, sampled, seed, compare)
    worst = carried.worst(batched).worst(incremental).worst(breadth)
    samples = len(observations) + FAR_OUT_SAMPLES
    made = "before every step" if policy.z_update == "step" else "at every episode start"
    return {"kind": "context", "episodes": len(trial.starts), "steps": trial.steps,
            "latent": latent_mode, "z_update": policy.z_update, "samples": samples,
            "far_out_samples": FAR_OUT_SAMPLES,
            "batch_sizes": [samples, *BATCH_SIZES], "tolerance": TOLERANCE,
            "scaled_tolerance": {"outputs": list(SCALED), "rule": f"{TOLERANCE:g} x max(1, "
                                 f"largest |output| of PyTorch)"},
            "action": "sampled" if sampled else "greedy", "onnx_checker": True,
            "sequence": {"batch_size": 1, "sums": f"ONNX Runtime's own sums fed back, z from "
                         f"its own posterior {made}", **carried.to_json()},
            "sequence_batched": {"batch_size": trial.steps, **batched.to_json()},
            "incremental_vs_batch": incremental_json,
            "random_inputs": breadth.to_json(), **worst.to_json()}


def _breadth(policy: ContextPolicy, acting: Any, encoding: Any, observations: np.ndarray,
             sampled: bool, seed: int,
             compare: Callable[[Arrays, Arrays, np.ndarray | None], Comparison]) -> Comparison:
    """Both graphs on random inputs, batch N, 1 and 37 (see 5.)."""
    probe, probe_encoding = random_inputs(policy, observations, sampled, seed)
    result = Comparison()
    for size in (len(probe["observation"]), *BATCH_SIZES):
        part = {name: value[:size] for name, value in probe.items()}
        result = result.worst(compare(reference_acting(policy, part, sampled), run(acting, part),
                                      part.get(NOISE_INPUT)))
        part = {name: value[:size] for name, value in probe_encoding.items()}
        result = result.worst(compare(reference_encoding(policy, part), run(encoding, part),
                                      None))
    return result

