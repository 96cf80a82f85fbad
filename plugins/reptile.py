"""Built-in algorithm plugin: Reptile (Nichol et al., 2018) for policies.

Each meta-iteration adapts θ per task with the inner SGD steps and moves θ towards the mean
of the adapted parameters: the outer optimiser (Adam) is fed ``θ − mean_i θ'ᵢ`` as gradient.
Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gameadapt import hookimpl
from gameadapt.algorithm import AlgorithmSpec

if TYPE_CHECKING:
    from gameadapt.learn.learner import Learner, MetaStep


def reptile_update(learner: Learner, step: MetaStep) -> dict[str, float]:
    """One optimiser step along ``θ − mean_i θ'ᵢ``."""
    import torch
    from gameadapt.learn import shard  # imports torch: loaded when the rule runs

    adapted = step.batch.adapted
    assert adapted is not None  # the learner always hands the rule its adaptation
    step.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        # the mean over the whole meta-batch (summed over the ranks when it is sharded)
        grads = {name: value.detach() - shard.tasks_mean(adapted[name].detach())
                 for name, value in step.params.items()}
        for name, value in step.params.items():
            value.grad = grads[name]
        norm = torch.sqrt(torch.stack([(g**2).sum() for g in grads.values()]).sum())
    step.optimizer.step()
    return {"reptile_step_norm": norm.item()}


def make_reptile(config: Mapping[str, Any] | None = None) -> Learner:
    """A Reptile learner from an options mapping."""
    from gameadapt.learn.learner import Learner, LearnerConfig

    return Learner("reptile", LearnerConfig.from_mapping(config), reptile_update)


@hookimpl
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Register ``reptile``."""
    register(AlgorithmSpec("reptile", "Reptile: moves the initialisation towards each task's "
                                      "adapted parameters (first order).", make_reptile))
