"""Built-in algorithm plugin: MAML (second order) and first-order MAML.

The outer step is a multi-epoch clipped surrogate (or policy gradient) on the episodes
sampled after adaptation, differentiated through the inner step: the first epoch through the
adaptation that chose the post-update policies, later epochs through the inner step
recomputed from the pre-adaptation episodes at the updated parameters (see
:func:`gameadapt.learn.meta.outer_loss`).
Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from gameadapt import hookimpl
from gameadapt.algorithm import AlgorithmSpec

if TYPE_CHECKING:
    from gameadapt.learn.learner import Learner, MetaStep


def maml_update(learner: Learner, step: MetaStep) -> dict[str, float]:
    """Outer epochs on the post-adaptation surrogate, through the inner step (the first
    epoch differentiates ``step.batch.adapted`` itself)."""
    return learner.optimize_surrogate(step, learner.inner_loop)


def make_maml(config: Mapping[str, Any] | None = None, *, first_order: bool = False) -> Learner:
    """A (first-order if asked) MAML learner from an options mapping."""
    from gameadapt.learn.learner import Learner, LearnerConfig

    return Learner("fomaml" if first_order else "maml", LearnerConfig.from_mapping(config),
                   maml_update, first_order=first_order)


@hookimpl
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Register ``maml`` and ``fomaml``."""
    register(AlgorithmSpec("maml", "MAML, second order: adapts in a few policy-gradient steps; "
                                   "the outer step is a clipped surrogate through the inner step.",
                           make_maml))
    register(AlgorithmSpec("fomaml", "First-order MAML: like maml without the second-order "
                                     "terms (cheaper).", partial(make_maml, first_order=True)))
