"""Adapt a meta-trained policy to one variant (``gameadapt adapt``).

Plays ``episodes`` episodes of the target variant with the meta-trained policy (one task x
``episodes`` envs), applies ``steps`` inner steps of the run's own algorithm, and saves the
adapted policy with its provenance. The mean returns before and after are measured on fresh
evaluation episodes, seeded differently from the adaptation data, both with sampled actions
and greedy ones (what a game playing the ``action`` output of a greedy export gets), and the
success rate where the game defines success.

A recurrent policy (RL²) or a context one is refused with one line: it adapts in its hidden
state (or its task posterior) while it plays, so there is nothing to adapt here; its export
carries the state, or the posterior's sums (``exports/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..algorithm import gradient_algorithm
from ..errors import GameadaptError
from ..hashrandom import derive_seed
from ..learn.policy import Params, detached
from ..learn.rollout import play_episodes
from ..variants import Variant
from .sources import PolicySource, load_policy_source, save_adapted

MODES = ("sampled", "greedy")


@dataclass(frozen=True)
class Measured:
    """Mean return (and success rate, or None) of fresh episodes in one action mode."""

    mean_return: float
    success: float | None


@dataclass(frozen=True)
class AdaptResult:
    """What :func:`adapt_policy` did: where it saved, and the returns before and after
    (``return_before``/``return_after``: sampled; ``before``/``after``: every mode)."""

    out_dir: Path
    variant: Variant
    return_before: float
    return_after: float
    provenance: dict[str, Any]
    before: dict[str, Measured]
    after: dict[str, Measured]


def check_adaptable(source: PolicySource) -> None:
    """A one-line error for a source ``adapt`` cannot adapt (a recurrent or context policy)."""
    name = source.session.algorithm.name
    if source.recurrent:
        raise GameadaptError(
            f"{source.path} is an {name!r} run: it adapts in its "
            f"hidden state while it plays, so there is nothing to adapt; export it "
            f"(gameadapt export) and carry the state between episodes (exports/README.md)")
    if source.context:
        raise GameadaptError(
            f"{source.path} is a {name!r} run: it adapts in its task posterior while it "
            f"plays (encoder.onnx adds every transition to two running sums), so there is "
            f"nothing to adapt; export it (gameadapt export) and carry the sums between "
            f"episodes (exports/README.md)")


def measure(source: PolicySource, params: Params, variant: Variant, episodes: int, seed: int,
            greedy: bool) -> Measured:
    """Mean return and success rate of ``episodes`` episodes of ``variant`` with ``params``."""
    played, returns = play_episodes(source.spec, source.mlp_policy, params, variant, episodes,
                                    seed, agents=source.session.agents, greedy=greedy)
    success = None
    if played.success is not None:  # [1, rows]; the learner is the first row of each env
        success = played.success[0].reshape(episodes, -1)[:, 0].float().mean().item()
    return Measured(returns.mean().item(), success)


def mean_return(source: PolicySource, params: Params, variant: Variant, episodes: int,
                seed: int) -> float:
    """Mean return of ``episodes`` sampled episodes of ``variant`` with ``params``."""
    return measure(source, params, variant, episodes, seed, greedy=False).mean_return


def measure_modes(source: PolicySource, params: Params, variant: Variant, episodes: int,
                  seed: int) -> dict[str, Measured]:
    """:func:`measure` with sampled and greedy actions, on the same env seeds."""
    return {mode: measure(source, params, variant, episodes, seed, mode == "greedy")
            for mode in MODES}


def adapt_params(source: PolicySource, variant: Variant, episodes: int, steps: int | None,
                 seed: int) -> Params:
    """The source's parameters after ``steps`` inner steps on ``episodes`` fresh episodes."""
    algorithm = gradient_algorithm(source.session.algorithm, "gameadapt adapt")
    shared = detached(source.session.params)
    data, _ = play_episodes(source.spec, source.mlp_policy, shared, variant, episodes, seed,
                            agents=source.session.agents)
    with torch.enable_grad():
        adapted = algorithm.adapt(source.mlp_policy, shared, data, steps)
    return {name: value[0].detach().clone() for name, value in adapted.items()}


def adapt_policy(source: PolicySource | Path, variant: dict[str, Any], out_dir: Path, *,
                 episodes: int = 20, steps: int | None = None, seed: int = 0,
                 eval_episodes: int = 20) -> AdaptResult:
    """Adapt a run or an adapted policy (a path or a loaded source) to ``variant``.

    Saves the adapted policy to ``out_dir``, which must not exist yet.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise GameadaptError(f"{out_dir} already exists; adapt never overwrites, choose another -o")
    if episodes < 1 or eval_episodes < 1 or (steps is not None and steps < 1):
        raise GameadaptError("--episodes, --eval-episodes and --steps must be >= 1")
    if not isinstance(source, PolicySource):
        source = load_policy_source(source)
    check_adaptable(source)
    variant = source.spec.variant_space.validate(variant)
    if steps is None:
        steps = gradient_algorithm(source.session.algorithm, "gameadapt adapt").inner_loop.steps
    data_seed, eval_seed = derive_seed(seed, 0), derive_seed(seed, 1)  # data, evaluation
    adapted = adapt_params(source, variant, episodes, steps, data_seed)
    before = measure_modes(source, detached(source.session.params), variant, eval_episodes,
                           eval_seed)
    after = measure_modes(source, adapted, variant, eval_episodes, eval_seed)
    record = {"source": str(source.path), "source_kind": source.kind, "variant": variant,
              "episodes": episodes, "steps": steps, "seed": seed, "data_seed": data_seed,
              "eval_seed": eval_seed, "eval_episodes": eval_episodes,
              "return_before": before["sampled"].mean_return,
              "return_after": after["sampled"].mean_return,
              **evaluation_record(source, before, after),
              "previous": source.provenance.get("adapted")}
    provenance = {**source.provenance, "adapted": record}
    state = {**source.policy.state_dict(), **adapted}
    save_adapted(out_dir, source, state, variant, provenance)
    return AdaptResult(out_dir, variant, before["sampled"].mean_return,
                       after["sampled"].mean_return, provenance, before, after)


def evaluation_record(source: PolicySource, before: dict[str, Measured],
                      after: dict[str, Measured]) -> dict[str, Any]:
    """The provenance's ``greedy``, ``sampled`` (mean returns) and ``success`` fields."""
    record: dict[str, Any] = {mode: {"return_before": before[mode].mean_return,
                                     "return_after": after[mode].mean_return}
                              for mode in MODES}
    defined = all(m.success is not None for m in (*before.values(), *after.values()))
    record["success"] = {"means": source.spec.success, **{
        mode: {"before": before[mode].success, "after": after[mode].success}
        for mode in MODES}} if defined else None
    return record
