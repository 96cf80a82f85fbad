"""Built-in algorithm plugin: the context family (task inference), after PEARL (Rakelly et
al., 2019, "Efficient Off-Policy Meta-Reinforcement Learning via Probabilistic Context
Variables"), trained on-policy.

An encoder turns each transition into a Gaussian factor; their product is a posterior over a
latent task variable that the policy reads, so the agent adapts by adding each new
transition to two running sums, no gradient step and no sequence kept (see
:mod:`gameadapt.learn.context`). Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gameadapt import hookimpl
from gameadapt.algorithm import AlgorithmSpec

if TYPE_CHECKING:
    from gameadapt.learn.context import Context


def make_context(config: Mapping[str, Any] | None = None) -> Context:
    """A context-family learner from an options mapping."""
    from gameadapt.learn.context import Context, ContextConfig

    return Context(ContextConfig.from_mapping(config))


@hookimpl
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Register ``context``."""
    register(AlgorithmSpec("context", "Task inference (PEARL-style): a posterior over a task "
                                      "variable from each transition, two running sums; no "
                                      "gradient step.", make_context))
