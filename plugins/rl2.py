"""Built-in algorithm plugin: RL², the recurrent family (Duan et al., 2016, "RL²: Fast
Reinforcement Learning via Slow Reinforcement Learning"; Wang et al., 2016, "Learning to
reinforcement learn").

A GRU policy reads the observation, the previous action, the previous reward and an
episode-start flag; its state is carried across the episodes of a trial on one variant, so
it adapts with nothing but the forward pass a game runs anyway (see
:mod:`gameadapt.learn.rl2`). Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gameadapt import hookimpl
from gameadapt.algorithm import AlgorithmSpec

if TYPE_CHECKING:
    from gameadapt.learn.rl2 import RL2


def make_rl2(config: Mapping[str, Any] | None = None) -> RL2:
    """An RL² learner from an options mapping."""
    from gameadapt.learn.rl2 import RL2, RL2Config

    return RL2(RL2Config.from_mapping(config))


@hookimpl
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Register ``rl2``."""
    register(AlgorithmSpec("rl2", "RL²: a recurrent (GRU) policy that adapts in its hidden "
                                  "state over the episodes of a trial, no gradient step.",
                           make_rl2))
