"""Built-in algorithm plugin: the baselines that honest evaluation compares MAML against.

``pretrain`` trains one multi-task policy with the same outer optimiser on the same variants,
without adaptation in the loop; ``scratch`` keeps its random initialisation. At evaluation
both are fine-tuned with the same inner steps and data as MAML
(:meth:`gameadapt.learn.learner.Learner.adapt`). Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gameadapt import hookimpl
from gameadapt.algorithm import AlgorithmSpec

if TYPE_CHECKING:
    from gameadapt.learn.learner import Learner, MetaStep


def pretrain_update(learner: Learner, step: MetaStep) -> dict[str, float]:
    """Outer epochs on the surrogate of the pre-adaptation episodes, no inner step."""
    import dataclasses

    from gameadapt.learn.meta import MetaBatch

    pre_only = dataclasses.replace(step, batch=MetaBatch(step.batch.pre, step.batch.pre))
    no_inner_step = dataclasses.replace(learner.inner_loop, steps=0, first_order=True)
    return learner.optimize_surrogate(pre_only, no_inner_step)


def make_pretrain(config: Mapping[str, Any] | None = None) -> Learner:
    """A multi-task pretraining baseline from an options mapping."""
    from gameadapt.learn.learner import Learner, LearnerConfig

    return Learner("pretrain", LearnerConfig.from_mapping(config), pretrain_update)


def make_scratch(config: Mapping[str, Any] | None = None) -> Learner:
    """A from-scratch baseline (never trained) from an options mapping."""
    from gameadapt.learn.learner import Learner, LearnerConfig

    return Learner("scratch", LearnerConfig.from_mapping(config), None)


@hookimpl
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Register ``pretrain`` and ``scratch``."""
    register(AlgorithmSpec("pretrain", "Baseline: one multi-task policy trained on the same "
                                       "variants, fine-tuned at evaluation.", make_pretrain,
                           adapts=False))
    register(AlgorithmSpec("scratch", "Baseline: a random initialisation, fine-tuned at "
                                      "evaluation with the same data.", make_scratch,
                           adapts=False))
