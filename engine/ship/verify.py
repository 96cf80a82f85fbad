"""Checks every exported file before it is published: ONNX checker, ONNX Runtime vs PyTorch.

* Observations come from the game itself: its gymnasium view (``spec.make_env(variant)``)
  is played with random actions over several seeds; if that yields too few, samples of the
  observation space fill up. :func:`verify_policy` adds far-out observations (40 standard
  deviations of the policy's normaliser away) so the ±10 normalisation clip is exercised.
* float32 outputs must match PyTorch to :data:`TOLERANCE` (max abs diff); a discrete
  ``action`` must equal PyTorch's argmax, except where PyTorch's two largest logits are
  within :data:`TOLERANCE` of each other (a tie at float32 precision; such samples are counted
  in ``action_ties`` but cannot fail the export). A sampled graph (``noise`` input) is fed
  the same uniform numbers as PyTorch's formula (:func:`~gameadapt.ship.graphs.noise_action`);
  its ties are those of the Gumbel-perturbed logits.
* The recurrent ``policy.onnx`` is checked over whole trials with its state carried:
  :mod:`gameadapt.ship.recurrent_verify`; a context export's two graphs with the posterior's
  sums carried: :mod:`gameadapt.ship.context_verify`.
* ``policy.int8.onnx``: every float output within :data:`INT8_TOLERANCE` of PyTorch, or
  within that fraction of the output's largest magnitude when larger than 1 (dynamic int8
  quantisation of the weights and activations errs by a little: ``docs/performance.md``); discrete action
  agreement is reported, not required.
* Latency: the median wall time of ``InferenceSession.run`` on the CPU provider with one
  intra-op thread, for a batch of 1 and of 64 observations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from ..errors import GameadaptError, exception_line
from ..game import GameSpec, flat_size
from ..learn.policy import ActionHead, MLPPolicy, distribution_params, policy_params
from ..variants import Variant
from .adapter import WeightSpec, own_params, read_weights_blob, reference_inner_step
from .formats import NOISE_INPUT
from .graphs import gumbel_scores, noise_size, output_names, reference_outputs
from .onnx_export import quiet

TOLERANCE = 1e-5
INT8_TOLERANCE = 0.1
FAR_OUT_SAMPLES = 64
ADAPTER_SAMPLES = 256
MAX_EPISODE_STEPS = 1000
MAX_EPISODES = 200
LAYER_OPS = ("MatMul", "Gemm")  # the layers dynamic int8 quantisation rewrites


def onnxruntime_version() -> str:
    return str(onnxruntime.__version__)


def onnx_version() -> str:
    return str(onnx.__version__)


# -- observations ------------------------------------------------------------------------------
def collect_observations(spec: GameSpec, variant: Variant, count: int, seed: int = 0,
                         agents: Sequence[str] = ()) -> tuple[np.ndarray, dict[str, Any]]:
    """``count`` observations ``[count, obs_dim]`` float32 played in the game (random actions).

    With several ``agents`` (a shared multi-agent policy) the game's parallel env is played
    instead, random actions for every agent, and each of ``agents``' observations is kept.
    """
    obs_dim = flat_size(spec.observation_space)
    play = _parallel_episode if len(agents) > 1 else _single_episode
    collected: list[np.ndarray] = []
    episodes = 0
    while len(collected) < count and episodes < MAX_EPISODES:
        for observation in play(spec, variant, seed + episodes, agents):
            collected.append(np.asarray(observation, dtype=np.float32).reshape(obs_dim))
            if len(collected) >= count:
                break
        episodes += 1
    played = len(collected)
    space = spec.observation_space
    space.seed(seed)
    while len(collected) < count:
        collected.append(np.asarray(space.sample(), dtype=np.float32).reshape(obs_dim))
    observations = np.nan_to_num(np.stack(collected[:count]), posinf=1e6, neginf=-1e6)
    return observations.astype(np.float32), {"played": min(played, count), "episodes": episodes,
                                             "sampled_from_space": max(0, count - played)}


def _single_episode(spec: GameSpec, variant: Variant, seed: int,
                    agents: Sequence[str]) -> Iterator[Any]:
    """The observations of one random-action episode of the game's gymnasium view."""
    env = spec.make_env(variant)
    try:
        observation, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        yield observation
        for _ in range(MAX_EPISODE_STEPS):
            observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
            yield observation
            if terminated or truncated:
                break
    finally:
        env.close()


def _parallel_episode(spec: GameSpec, variant: Variant, seed: int,
                      agents: Sequence[str]) -> Iterator[Any]:
    """``agents``' observations in one random-action episode of the game's parallel env."""
    assert spec.make_parallel_env is not None
    env = spec.make_parallel_env(variant)
    try:
        observations, _ = env.reset(seed=seed)
        for index, agent in enumerate(env.possible_agents):
            env.action_space(agent).seed(seed + index)
        for _ in range(MAX_EPISODE_STEPS):
            yield from (observations[agent] for agent in agents if agent in observations)
            if not env.agents:
                break
            observations, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    finally:
        env.close()


def far_out_observations(policy: MLPPolicy, count: int = FAR_OUT_SAMPLES, seed: int = 0
                         ) -> np.ndarray:
    """Observations ~40 normaliser standard deviations out (clipped to ±10 in the graph)."""
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (count, policy.obs_dim), generator=generator) * 2 - 1
    scale = torch.rand(count, policy.obs_dim, generator=generator) * 60 + 10
    far = policy.obs_mean + signs * scale * torch.sqrt(policy.obs_var + 1e-8)
    return far.to(torch.float32).numpy()


# -- ONNX Runtime ------------------------------------------------------------------------------
def check_model(path: Path) -> None:
    """``onnx.checker.check_model`` with full shape inference (raises on an invalid file)."""
    onnx.checker.check_model(str(path), full_check=True)


def session(path: Path | bytes, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    source = path if isinstance(path, bytes) else str(path)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run(sess: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [output.name for output in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def torch_outputs(policy: MLPPolicy, observations: np.ndarray,
                  params: dict[str, torch.Tensor] | None = None,
                  noise: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """What ``policy.onnx`` (or ``policy_weights.onnx`` with ``params``) should output."""
    with torch.no_grad():
        values = reference_outputs(policy, params if params is not None else policy_params(policy),
                                   torch.from_numpy(np.ascontiguousarray(observations)),
                                   None if noise is None else torch.from_numpy(noise))
    return {name: value.detach().numpy() for name, value in zip(output_names(policy), values)}


def uniform_noise(policy: ActionHead, count: int, seed: int = 0) -> np.ndarray:
    """``count`` rows of uniform(0, 1) float32 numbers for a sampled graph's ``noise``."""
    generator = np.random.default_rng(seed)
    return generator.random((count, noise_size(policy))).astype(np.float32)


def action_scores(expected: dict[str, np.ndarray], noise: np.ndarray | None) -> np.ndarray | None:
    """What a discrete ``action`` is the argmax of: the logits, or the Gumbel-perturbed
    logits of a sampled graph (``None`` for continuous outputs)."""
    logits = expected.get("logits")
    if logits is None or noise is None:
        return logits
    return gumbel_scores(torch.from_numpy(logits), torch.from_numpy(noise)).numpy()


@dataclass
class Comparison:
    """Outputs of ONNX Runtime against the expected ones: the max abs diff per output.

    Float outputs pass within ``tolerance``. With ``discrete_action``, an int ``action`` must
    equal the expected one except where the expected ``logits``' two largest are within
    ``tolerance`` (a float32 tie: counted in ``action_ties``, never a failure). Several
    comparisons (batch sizes, references) combine with :meth:`worst`.
    """

    max_abs_diff: dict[str, float] = field(default_factory=dict)
    passed: bool = True
    failure: str | None = None
    action_mismatches: int | None = None
    action_ties: int | None = None

    @classmethod
    def of(cls, expected: dict[str, np.ndarray], got: dict[str, np.ndarray], tolerance: float,
           *, discrete_action: bool = False, against: str = "PyTorch",
           scores: np.ndarray | None = None) -> Comparison:
        """Compare every output of ``expected`` with ``got``'s; a discrete action's ties are
        read from ``scores`` (default: the expected ``logits``)."""
        result = cls()
        for name, want in expected.items():
            have = got.get(name)
            if have is None or have.shape != want.shape:
                shape = None if have is None else list(have.shape)
                return result.failed(f"output {name!r} has shape {shape}, expected "
                                     f"{list(want.shape)}")
            if name == "action" and discrete_action:
                result._check_actions(have, want, expected["logits"] if scores is None
                                      else scores, tolerance)
                continue
            diff = float(np.abs(have.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
            result.max_abs_diff[name] = diff if np.isfinite(diff) else float("inf")
            if not diff <= tolerance:
                result.failed(f"output {name!r} differs from {against} by {diff:.3g} "
                              f"(tolerance {tolerance:g})")
        return result

    def _check_actions(self, have: np.ndarray, want: np.ndarray, logits: np.ndarray,
                       tolerance: float) -> None:
        mismatch = have.astype(np.int64) != want.astype(np.int64)
        ordered = np.sort(logits, axis=-1)
        tie = (ordered[..., -1] - ordered[..., -2]) <= tolerance if ordered.shape[-1] > 1 \
            else np.zeros_like(mismatch)
        self.max_abs_diff["action"] = float(np.abs(have.astype(np.int64)
                                                   - want.astype(np.int64)).max(initial=0))
        self.action_mismatches = int(mismatch.sum())
        self.action_ties = int((mismatch & tie).sum())
        if (mismatch & ~tie).any():
            self.failed(f"{int((mismatch & ~tie).sum())} discrete actions differ from PyTorch's")

    def failed(self, failure: str) -> Comparison:
        """Mark as failed (the first failure is kept)."""
        self.passed = False
        self.failure = self.failure or failure
        return self

    def worst(self, other: Comparison) -> Comparison:
        """The worst case of two comparisons (diffs maxed, counts summed)."""
        merged = Comparison(dict(self.max_abs_diff), self.passed and other.passed,
                            self.failure or other.failure)
        for name, value in other.max_abs_diff.items():
            merged.max_abs_diff[name] = max(value, merged.max_abs_diff.get(name, 0.0))
        for key in ("action_mismatches", "action_ties"):
            counts = [c for c in (getattr(self, key), getattr(other, key)) if c is not None]
            setattr(merged, key, sum(counts) if counts else None)
        return merged

    def to_json(self) -> dict[str, Any]:
        """``max_abs_diff``, ``passed`` and, where set, the action counts and the failure."""
        data: dict[str, Any] = {"max_abs_diff": self.max_abs_diff, "passed": self.passed}
        for key in ("action_mismatches", "action_ties", "failure"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


def compare(policy: ActionHead, expected: dict[str, np.ndarray], got: dict[str, np.ndarray],
            tolerance: float, noise: np.ndarray | None = None) -> Comparison:
    """:meth:`Comparison.of` with the policy's action semantics (``noise``: a sampled graph's)."""
    return Comparison.of(expected, got, tolerance, discrete_action=policy.discrete,
                         scores=action_scores(expected, noise))


def policy_feeds(observations: np.ndarray, noise: np.ndarray | None) -> dict[str, np.ndarray]:
    """``policy.onnx``'s feeds: the observations, and a sampled graph's noise."""
    return {"observation": observations, **({} if noise is None else {NOISE_INPUT: noise})}


# -- the checks --------------------------------------------------------------------------------
def verify_policy(policy: MLPPolicy, path: Path, observations: np.ndarray,
                  sampled: bool = False) -> dict[str, Any]:
    """``policy.onnx`` against PyTorch on ``observations`` plus far-out ones; batch 1 and 37.

    A ``sampled`` graph gets one row of uniform noise per observation, PyTorch the same.
    """
    check_model(path)
    sess = session(path)
    probe = np.concatenate([observations, far_out_observations(policy)]).astype(np.float32)
    noise = uniform_noise(policy, len(probe)) if sampled else None
    result = Comparison()
    for size in (len(probe), 1, 37):  # the batch dimension is dynamic
        part = None if noise is None else noise[:size]
        result = result.worst(compare(policy, torch_outputs(policy, probe[:size], noise=part),
                                      run(sess, policy_feeds(probe[:size], part)), TOLERANCE,
                                      part))
    return {"samples": int(len(probe)), "far_out_samples": FAR_OUT_SAMPLES,
            "batch_sizes": [int(len(probe)), 1, 37], "tolerance": TOLERANCE,
            "action": "sampled" if sampled else "greedy", "onnx_checker": True,
            **result.to_json()}


def verify_weights_policy(policy: MLPPolicy, path: Path, policy_path: Path, blob: bytes,
                          specs: Sequence[WeightSpec], observations: np.ndarray,
                          sampled: bool = False) -> dict[str, Any]:
    """``policy_weights.onnx`` (always greedy) fed ``weights.bin`` against PyTorch and
    ``policy.onnx`` (a ``sampled`` one: its distribution outputs only)."""
    check_model(path)
    feeds = read_weights_blob(blob, specs)
    got = run(session(path), {"observation": observations, **feeds})
    versus_torch = compare(policy, torch_outputs(policy, observations), got, TOLERANCE)
    noise = uniform_noise(policy, len(observations)) if sampled else None
    plain = run(session(policy_path), policy_feeds(observations, noise))
    if sampled:
        del plain["action"]
    versus_policy = compare(policy, plain, got, TOLERANCE)
    both = versus_torch.worst(versus_policy)
    result = {"samples": int(len(observations)), "tolerance": TOLERANCE, "onnx_checker": True,
              "max_abs_diff": versus_torch.max_abs_diff,
              "max_abs_diff_vs_policy_onnx": versus_policy.max_abs_diff, "passed": both.passed}
    return result if both.passed else {**result, "failure": both.failure}


def adapter_data(policy: MLPPolicy, observations: np.ndarray, count: int = ADAPTER_SAMPLES,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed ``(observations, actions, advantages)``: game observations, actions sampled
    from the policy (policy units), standard-normal advantages."""
    generator = torch.Generator().manual_seed(seed)
    obs = torch.from_numpy(np.ascontiguousarray(observations[:count]))
    with torch.no_grad():
        dist = distribution_params(policy, policy_params(policy), obs)
        actions = policy.sample(dist, generator)
    advantages = torch.randn(len(obs), generator=generator)
    return obs.numpy(), actions.numpy(), advantages.numpy()


def verify_adapter(policy: MLPPolicy, path: Path, weights_policy_path: Path, blob: bytes,
                   specs: Sequence[WeightSpec], observations: np.ndarray, inner_lr: float
                   ) -> dict[str, Any]:
    """``adapter.onnx`` against the engine's inner step (N = 256 and N = 1), and the adapted
    weights through ``policy_weights.onnx`` against the PyTorch adapted policy."""
    check_model(path)
    sess = session(path)
    weights = read_weights_blob(blob, specs)
    obs, actions, advantages = adapter_data(policy, observations)
    steps = Comparison()
    adapted_onnx: dict[str, np.ndarray] = {}
    for size in (len(obs), 1):
        got = run(sess, {**weights, "observations": obs[:size], "actions": actions[:size],
                         "advantages": advantages[:size],
                         "inner_lr": np.asarray(inner_lr, np.float32)})
        reference = reference_inner_step(
            policy, own_params(policy), torch.from_numpy(obs[:size]),
            torch.from_numpy(actions[:size]), torch.from_numpy(advantages[:size]), inner_lr)
        expected = {f"new_{spec.input_name}": reference[spec.name].numpy() for spec in specs}
        steps = steps.worst(Comparison.of(expected, got, TOLERANCE,
                                          against="the engine's inner step"))
        if size == len(obs):
            adapted_onnx = {spec.input_name: got[f"new_{spec.input_name}"] for spec in specs}
            adapted_torch = reference
    roundtrip = compare(policy, torch_outputs(policy, observations, adapted_torch),
                        run(session(weights_policy_path),
                            {"observation": observations, **adapted_onnx}), TOLERANCE)
    both = steps.worst(roundtrip)
    result = {"samples": int(len(obs)), "sample_counts": [int(len(obs)), 1],
              "inner_lr": float(inner_lr), "tolerance": TOLERANCE, "onnx_checker": True,
              "max_abs_diff": steps.max_abs_diff,
              "adapted_policy_max_abs_diff": roundtrip.max_abs_diff, "passed": both.passed}
    return result if both.passed else {**result, "failure": both.failure}


def example_feeds(sess: Any, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid inputs for every input of a policy graph: uniform(0, 1) floats, int64 zeros
    (an action index), the dynamic dimension ``batch``."""
    generator = np.random.default_rng(seed)
    feeds = {}
    for value in sess.get_inputs():
        shape = [batch if not isinstance(dim, int) else dim for dim in value.shape]
        feeds[value.name] = (np.zeros(shape, np.int64) if value.type == "tensor(int64)"
                             else generator.random(shape).astype(np.float32))
    return feeds


def measure_latency(path: Path | bytes, runs: int = 300, warmup: int = 30,
                    batches: Sequence[int] = (1, 64)) -> dict[str, Any]:
    """Median µs of ``InferenceSession.run`` per call (CPU provider, one thread)."""
    sess = session(path)
    names = [output.name for output in sess.get_outputs()]
    result: dict[str, Any] = {}
    for batch in batches:
        feeds = example_feeds(sess, batch)
        for _ in range(warmup):
            sess.run(names, feeds)
        times = np.empty(runs)
        for index in range(runs):
            started = time.perf_counter_ns()
            sess.run(names, feeds)
            times[index] = time.perf_counter_ns() - started
        result[f"batch_{batch}"] = round(float(np.median(times)) / 1000.0, 2)
    result.update({"provider": "CPUExecutionProvider", "intra_op_threads": 1, "runs": runs})
    return result


def output_layer_nodes(path: Path) -> list[str]:
    """The names of the MatMul/Gemm nodes with no MatMul/Gemm after them (the heads)."""
    model = onnx.load(str(path))
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers = [node for node in model.graph.node if node.op_type in LAYER_OPS]

    def feeds_a_layer(node: Any) -> bool:
        seen, todo = set(), list(node.output)
        while todo:
            for consumer in consumers.get(todo.pop(), []):
                if consumer.op_type in LAYER_OPS:
                    return True
                if id(consumer) not in seen:
                    seen.add(id(consumer))
                    todo.extend(consumer.output)
        return False

    # the quantiser splits a Gemm into NAME_MatMul + NAME_Add before it looks at the names
    return [name for node in layers if not feeds_a_layer(node)
            for name in (node.name, f"{node.name}_MatMul")]


def quantize_int8(policy: MLPPolicy, source: Path, target: Path, observations: np.ndarray,
                  sampled: bool = False, finish: Callable[[Path], None] | None = None
                  ) -> dict[str, Any]:
    """``quantize_dynamic`` (int8 weights) to ``target``, then ``finish(target)`` (the
    export's stamp), with parity and latency."""
    try:
        # 7-bit weights: x86 CPUs without VNNI (AVX2, e.g. this project's CI machines)
        # saturate the u8 x s8 products of full-range int8 weights (ONNX Runtime's
        # quantisation guide); the outputs then differed by more than the tolerance.
        # the output layer stays float32: its int8 rounding moved a continuous action by
        # up to half its range (Pendulum: 0.504, tolerance 0.2); the body's layers are most
        # of the weights
        with quiet():
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                             reduce_range=True, nodes_to_exclude=output_layer_nodes(source))
        if finish is not None:
            finish(target)
        check_model(target)
    except Exception as exc:  # noqa: BLE001 - the quantiser raises many kinds of errors
        raise GameadaptError(f"int8 quantisation failed ({exception_line(exc)[:160]})") from None
    probe = np.concatenate([observations, far_out_observations(policy)]).astype(np.float32)
    noise = uniform_noise(policy, len(probe)) if sampled else None
    expected = torch_outputs(policy, probe, noise=noise)
    got = run(session(target), policy_feeds(probe, noise))
    result = Comparison()
    tolerances = {}
    for name, want in expected.items():
        if name == "action" and policy.discrete:
            continue
        tolerances[name] = INT8_TOLERANCE * max(1.0, float(np.abs(want).max(initial=0.0)))
        result = result.worst(Comparison.of({name: want}, got, tolerances[name],
                                            against="PyTorch (int8)"))
    data: dict[str, Any] = {
        "type": "int8-dynamic", "file": target.name, "samples": int(len(probe)),
        "max_abs_diff": result.max_abs_diff, "tolerance": tolerances,
        "tolerance_rule": f"{INT8_TOLERANCE} x max(1, largest |output| of PyTorch)",
        "passed": result.passed, "latency_us": measure_latency(target)}
    if policy.discrete:
        data["action_agreement"] = float(np.mean(got["action"] == expected["action"]))
    if result.failure:
        data["failure"] = result.failure
    return data
