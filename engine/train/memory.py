"""How much memory a training iteration or an evaluation will take, estimated before any of
it is allocated, and the refusal of a job that would not fit.

The estimate has three parts (bytes, float32 = 4 bytes each value):

* the rollout: rows (tasks x envs x controlled agents) x horizon (the game's episode limit)
  x rounds (the gradient family's ``inner_steps + 1`` rounds of episodes; a trial family's
  ``trial_episodes`` episodes per trial) x the values kept per step (observation, action,
  log-prob, value, reward, mask, advantage, return), ``ROLLOUT_COPIES`` times (the
  task-major copies the losses make);
* the update's activations: the same rows x horizon x rounds x the policy's layer widths,
  ``ACTIVATION_COPIES`` times (what backprop keeps; second-order MAML keeps the inner
  step's graph too);
* the parameters, counted on a policy built on ``torch.device("meta")`` (nothing
  allocated), x (weights, gradients, Adam's two moments) plus, for the gradient family, one
  adapted copy per task and inner step.

A job whose estimate exceeds ``limits.MEMORY_SHARE`` of the available memory
(``MemAvailable`` of ``/proc/meminfo``, else ``os.sysconf``) is refused with one line,
unless the command runs with ``--ignore-memory-limit`` (``limits.ignore_memory_limit``).
The calibration against measured peaks is in ``docs/architecture.md`` ("Guarantees").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import torch

from ..errors import GameadaptError
from ..game import GameSpec, flat_size
from ..host.registry import get_registry
from ..learn.vector import make_batched_game
from ..limits import MEMORY_FLAG, MEMORY_SHARE, ignore_memory_limit
from ..variants import Split, Variant
from .tuning import cpu_threads

FLOAT_BYTES = 4
STEP_EXTRA_VALUES = 8  # log-prob, value, reward, mask, advantage, return, done, episode flag
ROLLOUT_COPIES = 3  # the rollout, the task batch and its task-major copy
ACTIVATION_COPIES = 4  # pre-activation, output and their gradients per layer
SECOND_ORDER_COPIES = 3  # more per inner step when the inner graph is differentiated
OPTIMIZER_COPIES = 4  # weights, gradients, Adam's two moments
RECURRENT_WIDTH = 8  # values per unit of a recurrent cell's state, per step
HORIZON_PROBE_TASKS = 8  # variants whose longest episode gives the horizon
FALLBACK_WIDTH = 256  # layer widths assumed for a policy that cannot be built on "meta"
FALLBACK_HORIZON = 1000  # when the game cannot say (its views fail later, with their own line)
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class MemoryEstimate:
    """The bytes of a job's rollout, update activations and parameters."""

    what: str
    rollout: int
    activations: int
    parameters: int

    @property
    def total(self) -> int:
        return self.rollout + self.activations + self.parameters


@dataclass(frozen=True)
class Workload:
    """The shape of one job: rows stepped at once, rounds of episodes kept, inner steps."""

    rows: int
    rounds: int
    inner_steps: int  # 0 for the trial families
    second_order: bool
    tasks: int
    minibatches: int = 1  # the update's backprop holds one slice of the rows at a time
    backprop: bool = True  # False: no graph is kept over the steps (an evaluation's trials)


def training_workload(config: Any, spec: GameSpec, algorithm: Any) -> Workload:
    """The workload of one meta-iteration of ``config`` (a TrainConfig)."""
    agents = max(1, len(spec.controlled_agents(config.share_policy)))
    rows = config.meta_batch * config.envs_per_task * agents
    return _workload(algorithm, rows, config.meta_batch, trial_rounds=None,
                     minibatches=_minibatches(algorithm, config.meta_batch))


def _minibatches(algorithm: Any, tasks: int) -> int:
    """The slices the update's backprop runs over (1 when the algorithm does not say)."""
    options = algorithm.options() if callable(getattr(algorithm, "options", None)) else {}
    count = options.get("minibatches", options.get("outer_minibatches", 1))
    return max(1, min(int(count), tasks)) if isinstance(count, int) else 1


def _workload(algorithm: Any, rows: int, tasks: int, trial_rounds: int | None,
              minibatches: int = 1) -> Workload:
    """The rounds a family keeps: ``inner_steps + 1`` (gradient) or a trial's episodes."""
    if algorithm.family == "gradient":
        inner = algorithm.inner_loop
        return Workload(rows, inner.steps + 1, inner.steps, not inner.first_order, tasks,
                        minibatches)
    rounds = trial_rounds if trial_rounds is not None else int(algorithm.trial_episodes)
    return Workload(rows, rounds, 0, False, tasks, minibatches)


def estimate(what: str, workload: Workload, horizon: int, spec: GameSpec, algorithm: Any
             ) -> MemoryEstimate:
    """The bytes of ``workload`` on ``spec`` with ``algorithm``'s policy."""
    count, width = policy_size(algorithm, spec.observation_space, spec.action_space)
    steps = workload.rows * horizon * workload.rounds
    step_values = (flat_size(spec.observation_space) + _action_values(spec.action_space)
                   + STEP_EXTRA_VALUES)
    copies = ACTIVATION_COPIES + SECOND_ORDER_COPIES * workload.inner_steps * \
        workload.second_order
    adapted = workload.tasks * workload.inner_steps * (2 if workload.second_order else 1)
    kept = steps if workload.backprop else workload.rows
    return MemoryEstimate(what, steps * step_values * ROLLOUT_COPIES * FLOAT_BYTES,
                          kept * width * copies * FLOAT_BYTES // workload.minibatches,
                          count * (OPTIMIZER_COPIES + adapted) * FLOAT_BYTES)


def _action_values(space: gymnasium.spaces.Space) -> int:
    """Values one action takes: a long index (two floats) or the Box's entries."""
    return 2 if isinstance(space, gymnasium.spaces.Discrete) else max(1, flat_size(space))


def policy_size(algorithm: Any, observation_space: gymnasium.spaces.Space,
                action_space: gymnasium.spaces.Space) -> tuple[int, int]:
    """The policy's parameter count and its summed layer widths, from a policy built on the
    ``meta`` device (no memory allocated)."""
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            policy = algorithm.make_policy(observation_space, action_space)
    except Exception:  # noqa: BLE001 - a plugin's policy that cannot be built on meta
        return 0, FALLBACK_WIDTH
    count = sum(p.numel() for p in policy.parameters())
    width = sum(_layer_width(module) for module in policy.modules())
    return int(count), int(width)


def _layer_width(module: torch.nn.Module) -> int:
    """Values a layer outputs per row and step (a recurrent cell: its gates, their
    products and its state, unrolled step by step)."""
    if isinstance(module, (torch.nn.GRU, torch.nn.GRUCell, torch.nn.LSTM, torch.nn.LSTMCell)):
        return RECURRENT_WIDTH * module.hidden_size
    return int(getattr(module, "out_features", 0))


def game_horizon(spec: GameSpec, variants: Sequence[Variant], agents: Sequence[str]) -> int:
    """The longest episode of the first few ``variants`` (one env each, on the CPU)."""
    try:
        game = make_batched_game(spec, list(variants[:HORIZON_PROBE_TASKS]), 1, "cpu",
                                 tuple(agents))
    except Exception:  # noqa: BLE001 - the views are checked next, with their own line
        return spec.max_episode_steps or FALLBACK_HORIZON
    with contextlib.closing(game):
        return max(1, int(game.horizon))


def probe_variants(spec: GameSpec, split: Split, count: int, seed: int) -> list[Variant]:
    """A few variants of ``split`` (at most HORIZON_PROBE_TASKS: never the whole batch)."""
    return spec.variant_space.sample(split, min(count, HORIZON_PROBE_TASKS), seed)


def available_memory() -> int:
    """Bytes the system can still give: MemAvailable, else free pages x page size."""
    with contextlib.suppress(OSError, ValueError):
        for line in MEMINFO.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError):
        return 0  # unknown: nothing is refused


def check_fits(estimated: MemoryEstimate) -> None:
    """Refuse ``estimated`` above MEMORY_SHARE of the available memory (one line)."""
    available = available_memory()
    limit = int(available * MEMORY_SHARE)
    if ignore_memory_limit.get() or available <= 0 or estimated.total <= limit:
        return
    raise GameadaptError(
        f"{estimated.what} would need about {_gib(estimated.total)} of memory (rollout "
        f"{_gib(estimated.rollout)}, update {_gib(estimated.activations)}, parameters "
        f"{_gib(estimated.parameters)}); the limit is {_gib(limit)} ({MEMORY_SHARE:.0%} of the "
        f"{_gib(available)} available); use smaller settings, or {MEMORY_FLAG} to go bigger")


def _gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB"


def check_training_fits(config: Any, spec: GameSpec, algorithm: Any) -> None:
    """Refuse a training run whose meta-iteration would not fit in memory."""
    agents = spec.controlled_agents(config.share_policy)
    horizon = game_horizon(spec, probe_variants(spec, config.variant_split, config.meta_batch,
                                                config.seed), agents)
    what = (f"one iteration of {config.algorithm} on {config.game} ({config.meta_batch} tasks x "
            f"{config.envs_per_task} episodes, horizon {horizon})")
    check_fits(estimate(what, training_workload(config, spec, algorithm), horizon, spec,
                        algorithm))


def evaluation_estimate(config: Any, spec: GameSpec, algorithm: Any, tasks: int,
                        episodes: int, trials: int, budgets: Sequence[int]) -> MemoryEstimate:
    """The largest batch of an evaluation: ``tasks x trials`` envs that play the largest
    budget (with the run's episodes per task) plus one episode, or ``tasks x episodes``
    episodes of the gradient family's per-step columns."""
    agents = spec.controlled_agents(config.share_policy)
    horizon = game_horizon(spec, probe_variants(spec, "test", tasks, 0), agents)
    most = max([*budgets, config.envs_per_task]) + 1
    rows = max(tasks * trials * most, tasks * episodes) * max(1, len(agents))
    # gradient: the experience as envs, one inner step's graph; trials: under no_grad, the
    # rollout is kept with one step's activations at a time
    workload = Workload(rows, 1, 0, False, tasks * trials,
                        backprop=algorithm.family == "gradient")
    what = (f"evaluating with --tasks {tasks} --episodes {episodes} --trials {trials} "
            f"(largest budget {most - 1}, horizon {horizon})")
    return estimate(what, workload, horizon, spec, algorithm)


def check_training_resources(config: Any, spec: GameSpec, algorithm: Any) -> None:
    """Before a session is built: a valid ``GAMEADAPT_TORCH_THREADS`` and an iteration that
    fits in memory (one line otherwise)."""
    cpu_threads()
    check_training_fits(config, spec, algorithm)


def check_evaluation_resources(config: Any, settings: Any) -> None:
    """Before an evaluation of a run of ``config`` (its TrainConfig) with ``settings`` (an
    EvalSettings): a valid ``GAMEADAPT_TORCH_THREADS`` and batches that fit in memory."""
    cpu_threads()
    registry = get_registry()
    spec = registry.game(config.game)
    algorithm = registry.algorithm(config.algorithm).make(config.options)
    check_fits(evaluation_estimate(config, spec, algorithm, settings.tasks, settings.episodes,
                                   settings.trials, settings.budgets))
