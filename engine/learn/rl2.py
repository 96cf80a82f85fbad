"""RL² (Duan et al., 2016; Wang et al., 2016): a recurrent policy trained across variants
whose adaptation to a new one is its hidden state, carried over the episodes of a trial.

Every meta-iteration plays one trial of ``trial_episodes`` episodes in every env of the
meta-batch (:func:`~gameadapt.learn.trials.sample_trials`), computes GAE over each trial as
one sequence (rewards divided by a running standard deviation of the discounted returns,
:meth:`~gameadapt.learn.recurrent.RecurrentPolicy.return_scale`, so that the value loss has
the same size in every game), and takes ``epochs`` passes of PPO's clipped surrogate with a
value loss and an entropy bonus, each pass in ``minibatches`` slices of the trials, backpropagating
through time over the whole trial. It implements :class:`gameadapt.algorithm.MetaAlgorithm`
(family ``recurrent``).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import torch

from ..algorithm import AdaptationFamily
from ..limits import MAX_LAYER_WIDTH
from .options import check_options, within
from .ppo import Batch, PPOConfig, TrialLearner, clipped_surrogate
from .recurrent import RecurrentPolicy


@dataclass(frozen=True)
class RL2Config(PPOConfig):
    """Hyper-parameters of ``rl2``: PPO's (:class:`~gameadapt.learn.ppo.PPOConfig`) and the
    GRU's width (the measurements behind the defaults: ``docs/performance.md``, "The
    recurrent family")."""

    hidden_size: int = 128  # GRU state width (the literature's 256 costs ~2x here)

    def validate(self) -> None:
        """Raise :class:`~gameadapt.errors.GameadaptError` naming the first invalid value."""
        check_options(self, [within("hidden_size", self.hidden_size, 1, MAX_LAYER_WIDTH),
                             *self.ppo_checks()])


class RL2(TrialLearner):
    """The ``rl2`` algorithm (see the module doc); a recurrent-family MetaAlgorithm."""

    family: AdaptationFamily = "recurrent"
    config: RL2Config

    def __init__(self, config: RL2Config, name: str = "rl2") -> None:
        super().__init__(config, name)

    def make_policy(self, observation_space: gymnasium.spaces.Space,
                    action_space: gymnasium.spaces.Space) -> RecurrentPolicy:
        """A freshly initialised :class:`RecurrentPolicy`."""
        cfg = self.config
        return RecurrentPolicy(observation_space, action_space, cfg.hidden_size,
                               cfg.init_log_std, cfg.scale_actions)

    def loss(self, policy: torch.nn.Module, batch: Batch
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`ppo_loss`."""
        assert isinstance(policy, RecurrentPolicy)
        return ppo_loss(policy, batch, self.config)


def ppo_loss(policy: RecurrentPolicy, batch: Batch, cfg: PPOConfig
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss (:func:`~gameadapt.learn.ppo.clipped_surrogate`) over the trials in
    ``batch`` (fields ``[S, B, ...]``), the GRU unrolled over each whole trial."""
    dist, values = policy.unroll(batch["inputs"], batch["mask"])
    return clipped_surrogate(policy.log_prob(dist, batch["actions"]), policy.entropy(dist),
                             values, batch, cfg)
