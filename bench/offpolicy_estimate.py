"""Why the context family trains on-policy: one training iteration of ``context`` against
one update of PEARL's off-policy learner (SAC with a context encoder), measured in the same
run, and what 15 minutes buy each.

The off-policy update is timed with PEARL's shapes (Rakelly et al. 2019, their code's
defaults): a meta-batch of 16 tasks x 256 transitions for the actor and critics, a context of
100 transitions per task for the encoder (3 layers of 200), twin Q-networks, a value network
and its target, and the policy, each 3 layers of ``width`` (300 in the paper; 64 is timed as
the small alternative), forward and backward with three Adam steps. Gridnav's sizes are
used (9-d observations, 4 actions as a one-hot, latent 5). The on-policy iteration is
``context``'s own ``meta_train_step`` at the gridnav setting of ``docs/performance.md``
(20 tasks x 10 envs, trials of 2 episodes, 4 PPO epochs), next to ``rl2``'s, the reference. Usage::

    python bench/offpolicy_estimate.py           # about a minute on 2 CPU cores, one thread
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from gameadapt.host.registry import get_registry
from gameadapt.learn.context import Context, ContextConfig
from gameadapt.learn.rl2 import RL2, RL2Config
from gameadapt.learn.vector import make_batched_game
from gameadapt.train.tuning import tune_malloc
from torch import nn

OBS, ACT, LATENT, TASKS, BATCH, CONTEXT = 9, 4, 5, 16, 256, 100
PAPER_UPDATES = 1_000_000  # order of PEARL's gradient updates on its MuJoCo tasks


def mlp(inputs: int, width: int, outputs: int, layers: int = 3) -> nn.Sequential:
    sizes = [inputs] + [width] * layers
    body: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        body += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*body, nn.Linear(sizes[-1], outputs))


def sac_update(width: int) -> Callable[[], None]:
    """One PEARL update (encoder, twin Q, V and target V, policy) as a closure."""
    encoder = mlp(2 * OBS + ACT + 1, 200, 2 * LATENT)
    q1, q2 = mlp(OBS + ACT + LATENT, width, 1), mlp(OBS + ACT + LATENT, width, 1)
    value, target = mlp(OBS + LATENT, width, 1), mlp(OBS + LATENT, width, 1)
    policy = mlp(OBS + LATENT, width, 2 * ACT)
    critic_opt = torch.optim.Adam([*encoder.parameters(), *q1.parameters(), *q2.parameters()])
    value_opt = torch.optim.Adam(value.parameters())
    policy_opt = torch.optim.Adam(policy.parameters())
    context = torch.randn(TASKS, CONTEXT, 2 * OBS + ACT + 1)
    obs, act = torch.randn(TASKS, BATCH, OBS), torch.randn(TASKS, BATCH, ACT)
    reward, next_obs = torch.randn(TASKS, BATCH, 1), torch.randn(TASKS, BATCH, OBS)

    def step() -> None:
        mu, raw = encoder(context).chunk(2, -1)
        precision = 1 / (nn.functional.softplus(raw) + 1e-4)
        z_mean = (precision * mu).sum(1) / precision.sum(1)
        z = (z_mean + torch.randn_like(z_mean) / precision.sum(1).sqrt()).unsqueeze(1)
        z = z.expand(TASKS, BATCH, LATENT)
        with torch.no_grad():
            backup = reward + 0.99 * target(torch.cat([next_obs, z], -1))
        sa = torch.cat([obs, act, z], -1)
        critic = ((q1(sa) - backup) ** 2).mean() + ((q2(sa) - backup) ** 2).mean()
        critic_opt.zero_grad()
        critic.backward()
        critic_opt.step()
        state = torch.cat([obs, z.detach()], -1)
        mean, log_std = policy(state).chunk(2, -1)
        action = torch.tanh(mean + log_std.exp() * torch.randn_like(mean))
        q = q1(torch.cat([obs, action, z.detach()], -1))
        value_loss = ((value(state) - q.detach()) ** 2).mean()
        value_opt.zero_grad()
        value_loss.backward()
        value_opt.step()
        policy_loss = (log_std.sum(-1, keepdim=True) - q).mean()
        policy_opt.zero_grad()
        policy_loss.backward()
        policy_opt.step()
        with torch.no_grad():
            for p, t in zip(value.parameters(), target.parameters()):
                t.mul_(0.995).add_(0.005 * p)

    return step


def trial_iteration(algorithm: Context | RL2) -> Callable[[], None]:
    """A trial family's training iteration at the gridnav setting, as a closure."""
    spec = get_registry().game("gridnav")
    policy = algorithm.make_policy(spec.observation_space, spec.action_space)
    params = dict(policy.named_parameters())
    optimizer = algorithm.make_optimizer(params)
    seeds = iter(range(10**6))

    def step() -> None:
        seed = next(seeds)
        variants = spec.variant_space.sample("train", 20, seed)
        with contextlib.closing(make_batched_game(spec, variants, 10)) as game:
            algorithm.meta_train_step(policy, params, optimizer, game, seed)

    return step


def median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # what `gameadapt train` uses on CPU
    tune_malloc()
    budget = 15 * 60
    recurrent = median_seconds(trial_iteration(RL2(RL2Config())), 5)
    on_policy = median_seconds(trial_iteration(Context(ContextConfig())), 5)
    print(f"rl2 (the reference), one iteration at 20 tasks x 10 envs: {recurrent:.2f} s")
    print(f"context (on-policy PPO), one iteration at 20 tasks x 10 envs: {on_policy:.2f} s "
          f"({on_policy / recurrent:.2f}x rl2's); {budget / on_policy:,.0f} iterations in "
          f"15 minutes")
    for width in (300, 64):
        update = median_seconds(sac_update(width), 10)
        print(f"PEARL update (SAC, {width}-unit nets, {TASKS} x {BATCH} batch): "
              f"{update * 1000:.0f} ms ({update / on_policy:.2f}x a context iteration); "
              f"{budget / update:,.0f} updates in 15 minutes, "
              f"{budget / update / PAPER_UPDATES:.1%} of the paper's ~10^6, before any time "
              f"for collecting the transitions")


if __name__ == "__main__":
    main()
