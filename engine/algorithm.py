"""Algorithm specs: what an algorithm plugin registers through ``register_algorithms``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm plugin's entry.

    ``make(config)`` builds the algorithm object that the trainer drives (see
    :mod:`gameadapt.trainer`); ``adapts`` says whether the algorithm meta-learns an
    initialisation for fast adaptation (MAML, Reptile) or is a baseline that is only
    fine-tuned at evaluation time; ``action_kinds`` lists the action spaces it supports.
    """

    id: str
    description: str
    make: Callable[..., Any]
    adapts: bool = True
    action_kinds: tuple[str, ...] = ("discrete", "continuous")

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe description (used by ``algorithms list --json``)."""
        return {
            "id": self.id,
            "description": self.description,
            "adapts": self.adapts,
            "action_kinds": list(self.action_kinds),
        }
