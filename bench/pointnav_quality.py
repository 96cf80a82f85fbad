"""Learning check: meta-train on pointnav at the MAML paper's setting and print the curve.

Meta-batches of 20 training goals x 20 episodes, one inner REINFORCE step (lr 0.1), horizon
100, a 64-64 tanh Gaussian policy. Every ``--eval-every`` iterations it prints the mean
return on 40 held-out goals (the variant space's test split) before and after one inner
step, and the training wall time so far (evaluation time excluded)::

    MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000 \\
        python bench/pointnav_quality.py --minutes 15 --seed 0

The malloc hints keep glibc from returning large temporary tensors to the OS after every
op (meta-iterations are up to 2x slower without them). Target: -15 or better after one
step within 15 minutes on 2 CPU cores (MAML-RL's TRPO reaches about -16.5 after 100
meta-batches). ``--set key=value`` overrides an algorithm option (see ``LearnerConfig``).
"""

from __future__ import annotations

import argparse
import time

import torch
from gameadapt.host.registry import get_registry
from gameadapt.learn.learner import evaluate_adaptation
from gameadapt.learn.policy import policy_params, resolve_device
from gameadapt.learn.vector import make_batched_game


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100_000, help="meta-batches at most")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algo", default="maml")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per meta-batch")
    parser.add_argument("--envs", type=int, default=20, help="episodes per task")
    parser.add_argument("--eval-tasks", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for these small ops on 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="algorithm option, e.g. --set outer_lr=1e-3")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    registry = get_registry()
    spec = registry.game("pointnav")
    options = dict(item.split("=", 1) for item in args.set)
    algorithm = registry.algorithm(args.algo).make(options)
    policy = algorithm.make_policy(spec.observation_space, spec.action_space).to(device)
    params = policy_params(policy)
    optimizer = algorithm.make_optimizer(params)
    held_out = make_batched_game(spec, spec.variant_space.sample("test", args.eval_tasks, seed=0),
                                 args.envs, device)
    print(f"# algo={args.algo} seed={args.seed} options={algorithm.options()}", flush=True)
    print(f"{'iteration':>9} {'seconds':>8} {'pre':>8} {'post':>8}", flush=True)

    def report(iteration: int, seconds: float) -> None:
        returns = evaluate_adaptation(algorithm, policy, params, held_out, seed=10_000, steps=1)
        pre, post = returns.mean(1).tolist()
        print(f"{iteration:>9} {seconds:>8.1f} {pre:>8.2f} {post:>8.2f}", flush=True)

    trained = 0.0
    report(0, trained)
    for iteration in range(1, args.iterations + 1):
        batch_seed = args.seed * 1_000_003 + iteration
        variants = spec.variant_space.sample("train", args.tasks, seed=batch_seed)
        game = make_batched_game(spec, variants, args.envs, device)
        start = time.perf_counter()
        algorithm.meta_train_step(policy, params, optimizer, game, seed=batch_seed)
        trained += time.perf_counter() - start
        done = trained >= args.minutes * 60 or iteration == args.iterations
        if iteration % args.eval_every == 0 or done:
            report(iteration, trained)
        if done:
            break


if __name__ == "__main__":
    main()
