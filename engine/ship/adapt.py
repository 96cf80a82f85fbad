"""Adapt a meta-trained policy to one variant (``gameadapt adapt``).

Plays ``episodes`` episodes of the target variant with the meta-trained policy (one task x
``episodes`` envs), applies ``steps`` inner steps of the run's own algorithm, and saves the
adapted policy with its provenance. The returns before and after are measured on fresh
evaluation episodes, seeded differently from the adaptation data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError
from ..hashrandom import derive_seed
from ..learn.policy import Params, detached
from ..learn.rollout import play_episodes
from ..variants import Variant
from .sources import PolicySource, load_policy_source, save_adapted


@dataclass(frozen=True)
class AdaptResult:
    """What :func:`adapt_policy` did: where it saved, and the returns before and after."""

    out_dir: Path
    variant: Variant
    return_before: float
    return_after: float
    provenance: dict[str, Any]


def mean_return(source: PolicySource, params: Params, variant: Variant, episodes: int,
                seed: int) -> float:
    """Mean return of ``episodes`` sampled episodes of ``variant`` with ``params``."""
    _, returns = play_episodes(source.spec, source.policy, params, variant, episodes, seed,
                               agents=source.session.agents)
    return returns.mean().item()


def adapt_params(source: PolicySource, variant: Variant, episodes: int, steps: int | None,
                 seed: int) -> Params:
    """The source's parameters after ``steps`` inner steps on ``episodes`` fresh episodes."""
    shared = detached(source.session.params)
    data, _ = play_episodes(source.spec, source.policy, shared, variant, episodes, seed,
                            agents=source.session.agents)
    with torch.enable_grad():
        adapted = source.session.algorithm.adapt(source.policy, shared, data, steps)
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
    variant = source.spec.variant_space.validate(variant)
    if steps is None:
        steps = source.session.algorithm.inner_loop.steps
    data_seed, eval_seed = derive_seed(seed, 0), derive_seed(seed, 1)  # data, evaluation
    adapted = adapt_params(source, variant, episodes, steps, data_seed)
    before = mean_return(source, detached(source.session.params), variant, eval_episodes,
                         eval_seed)
    after = mean_return(source, adapted, variant, eval_episodes, eval_seed)
    record = {"source": str(source.path), "source_kind": source.kind, "variant": variant,
              "episodes": episodes, "steps": steps, "seed": seed, "data_seed": data_seed,
              "eval_seed": eval_seed, "eval_episodes": eval_episodes,
              "return_before": before, "return_after": after,
              "previous": source.provenance.get("adapted")}
    provenance = {**source.provenance, "adapted": record}
    state = {**source.policy.state_dict(), **adapted}
    save_adapted(out_dir, source, state, variant, provenance)
    return AdaptResult(out_dir, variant, before, after, provenance)
