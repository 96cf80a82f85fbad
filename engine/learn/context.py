"""The context family, on-policy (after PEARL, Rakelly et al. 2019): a transition encoder
whose Gaussian factors multiply into a posterior over a latent task variable ``z``, and a
policy and value conditioned on ``z`` (:mod:`~gameadapt.learn.context_policy`), trained with
PPO on the engine's batched trials.

Every meta-iteration plays one trial of ``trial_episodes`` episodes in every env of the
meta-batch: the first episode acts on a ``z`` drawn from the prior, each later one on a
``z`` drawn from the posterior of the trial's transitions so far. The loss is PPO's
(:func:`~gameadapt.learn.ppo.clipped_surrogate`: GAE over the whole trial, so an episode
that shows the variant well is credited with the next episode's value) plus ``kl_weight`` x
the KL of each later episode's posterior to the unit prior (PEARL's information
bottleneck). The policy's ``z`` is recomputed from the stored transitions and the stored
standard-normal noise (the reparameterisation), so the policy and value gradients reach
the encoder. Why on-policy rather than PEARL's SAC with a replay buffer: see
``docs/algorithms.md``. It implements :class:`gameadapt.algorithm.MetaAlgorithm` (family
``context``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import gymnasium
import torch

from ..algorithm import AdaptationFamily
from ..limits import LAYER_SIZES_RULE, check_layer_sizes
from .context_policy import Z_UPDATES, ContextPolicy, ZUpdate
from .options import COEF_MAX, check_options, within
from .ppo import Batch, PPOConfig, TrialLearner, clipped_surrogate
from .shard import masked_mean  # sharded: this rank's share of the whole mean


@dataclass(frozen=True)
class ContextConfig(PPOConfig):
    """Hyper-parameters of ``context``: PPO's (:class:`~gameadapt.learn.ppo.PPOConfig`) and
    the posterior's (the measurements behind the defaults: ``docs/performance.md``, "The
    context family")."""

    latent_size: int = 5  # L: dims of z (PEARL's default)
    kl_weight: float = 1e-4  # weight of the KL to the prior (PEARL: 0.1, on unnormalised losses)
    hidden_sizes: tuple = (128, 128)  # the actor's and the critic's tanh layers
    encoder_sizes: tuple = (128, 128)  # the transition encoder's tanh layers
    z_update: str = "step"  # when z follows the posterior: every step, or at each episode's start

    def validate(self) -> None:
        """Raise :class:`~gameadapt.errors.GameadaptError` naming the first invalid value."""
        check_options(self, [
            within("latent_size", self.latent_size, 1, 256),
            within("kl_weight", self.kl_weight, 0, COEF_MAX),
            ("hidden_sizes", check_layer_sizes(self.hidden_sizes), LAYER_SIZES_RULE),
            ("encoder_sizes", check_layer_sizes(self.encoder_sizes), LAYER_SIZES_RULE),
            ("z_update", self.z_update in Z_UPDATES, f"must be one of {', '.join(Z_UPDATES)}"),
            *self.ppo_checks()])


class Context(TrialLearner):
    """The ``context`` algorithm (see the module doc); a context-family MetaAlgorithm."""

    family: AdaptationFamily = "context"
    config: ContextConfig

    def __init__(self, config: ContextConfig, name: str = "context") -> None:
        super().__init__(config, name)

    def make_policy(self, observation_space: gymnasium.spaces.Space,
                    action_space: gymnasium.spaces.Space) -> ContextPolicy:
        """A freshly initialised :class:`ContextPolicy`."""
        cfg = self.config
        return ContextPolicy(observation_space, action_space, cfg.latent_size, cfg.hidden_sizes,
                             cfg.encoder_sizes, cfg.init_log_std, cfg.scale_actions,
                             cast(ZUpdate, cfg.z_update))

    def loss(self, policy: torch.nn.Module, batch: Batch
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`context_loss`."""
        assert isinstance(policy, ContextPolicy)
        return context_loss(policy, batch, self.config)


def context_loss(policy: ContextPolicy, batch: Batch, cfg: ContextConfig
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss over the trials in ``batch`` (fields ``[S, B, ...]`` with ``episode``,
    ``noise`` ``[K, B, L]``) plus ``kl_weight`` x the mean KL of the posteriors acted on."""
    dist, values, kl = policy.unroll(batch["inputs"], batch["mask"], batch["episode"],
                                     batch["noise"])
    loss, stats = clipped_surrogate(policy.log_prob(dist, batch["actions"]),
                                    policy.entropy(dist), values, batch, cfg)
    if kl.shape[0] == 0:  # one episode per trial: the prior is all it ever acts on
        return loss, stats
    kl_mean = masked_mean(kl, torch.ones_like(kl))
    stats["kl"] = kl_mean.detach()
    return loss + cfg.kl_weight * kl_mean, stats
