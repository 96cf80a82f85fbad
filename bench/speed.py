"""Speed benchmark: vmapped MAML vs a per-task loop, batched games vs SyncVectorEnv.

Prints, all measured in this one run (medians over repeats):

1. seconds per second-order MAML meta-iteration at the pointnav paper setting (20 tasks x
   20 episodes x 100 steps, one inner step), vmap over tasks vs the per-task Python loop
   reference (same math), and the ratio. The batched meta-iteration is the trainer's own
   ``Learner.meta_train_step`` with one outer step: sample, adapt every task
   (``gameadapt.learn.meta``: ``torch.func.grad`` of the one-task inner loss under
   ``torch.func.vmap`` on task-major samples), sample, one second-order Adam step. The
   per-task loop runs the same iteration one task at a time: sample the task's episodes,
   adapt it and differentiate it with ``autograd.grad(create_graph=True)``. Two more
   comparisons show where batching gains: a loop only in the adaptation and the
   meta-gradient (sampling batched for both), and the meta-gradient alone on fixed data.
   A training iteration of the ``maml`` defaults (5 outer epochs) is timed too;
2. env steps/s of batched gridnav, pointnav and duel (the attacker's rows, scripted defender)
   at 20x20 and 1000x100 (tasks x envs) vs the same game's gymnasium view stepped through
   ``gymnasium.vector.SyncVectorEnv``, and the ratio;
3. the ``rl2`` training iteration (one trial of 2 episodes per env, 4 PPO epochs with
   backpropagation through time) at the gridnav and pointnav settings, GRU widths 128 and
   256, with its env steps/s, next to the reference measured in the same run: the same
   two rounds of the batched game played by the MLP policy of ``maml`` (so the ratio is the
   recurrent policy's cost in the rollout), and the ratio of the two widths;
4. the meta-iteration again in a child process without the malloc tuning, and the ratio.

Usage::

    python bench/speed.py                  # about 3 minutes on 2 CPU cores
    python bench/speed.py --quick          # fewer repeats
    python bench/speed.py --only rl2       # just the rl2 section
    python bench/speed.py --device cuda    # MAML and batched games on the GPU (the
                                           # references stay as they are; no malloc part)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import gymnasium
import numpy as np
import torch
from gameadapt.errors import GameadaptError
from gameadapt.host.registry import get_registry
from gameadapt.learn.learner import Learner
from gameadapt.learn.meta import MetaBatch, outer_loss
from gameadapt.learn.policy import detached, expand_params, policy_params, resolve_device
from gameadapt.learn.reference import reference_adapt, reference_meta_gradient
from gameadapt.learn.rollout import sample_episodes
from gameadapt.learn.trials import sample_trials
from gameadapt.train.tuning import DISABLE_ENV, tune_malloc


def synchronize() -> None:
    """Wait for queued GPU work, so that wall times include it (no-op without CUDA)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall times of ``repeats`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls."""
    return statistics.median(seconds(fn, repeats, warmup))


def host_speed() -> str:
    """Fixed workloads timed now, so runs at different moments (a shared host's speed
    varies) can be compared: a small elementwise op and a pointnav-sized batched matmul."""
    small = torch.randn(20, 20, 64)
    rows, weights = torch.randn(20, 2000, 64), torch.randn(20, 64, 64)
    op_us = median_seconds(lambda: small + small, 2000, warmup=100) * 1e6
    bmm_ms = median_seconds(lambda: torch.bmm(rows, weights), 100, warmup=5) * 1e3
    return f"host check: small op {op_us:.1f} us, batched matmul {bmm_ms:.2f} ms"


def maml_setup(tasks: int, envs: int, options: dict | None = None, device: str = "cpu"):
    """A pointnav MAML learner, a policy, and one meta-batch of pre/post episodes."""
    registry = get_registry()
    spec = registry.game("pointnav")
    learner: Learner = registry.algorithm("maml").make(options or {})
    torch.manual_seed(0)
    policy = learner.make_policy(spec.observation_space, spec.action_space).to(device)
    params = policy_params(policy)
    variants = spec.variant_space.sample("train", tasks, seed=0)
    game = spec.make_batched(variants, envs, device)
    task_games = [spec.make_batched([variant], envs, device) for variant in variants]
    shared = detached(params)
    pre_episodes = sample_episodes(game, policy, expand_params(shared, tasks), 1)
    adapted = learner.adapt(policy, shared, pre_episodes)
    post_episodes = sample_episodes(game, policy, adapted, 2)
    pre, post = learner.task_batch(pre_episodes), learner.task_batch(post_episodes)
    return learner, policy, params, game, task_games, pre, post


def bench_maml(tasks: int, envs: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    """Meta-gradient and full meta-iteration, vmap vs per-task loop."""
    learner, policy, params, game, task_games, pre, post = maml_setup(tasks, envs, None, device)
    inner, surrogate = learner.inner_loop, learner.surrogate

    def vmap_gradient() -> None:
        loss, _ = outer_loss(policy, params, MetaBatch(pre, post), inner, surrogate)
        torch.autograd.grad(loss, list(params.values()))

    def loop_gradient() -> None:
        reference_meta_gradient(policy, params, MetaBatch(pre, post), inner, surrogate)

    def trainer_iteration(epochs: int) -> Callable[[], None]:
        """The trainer's meta-iteration on a fresh copy of the policy (same data every call)."""
        step_learner, step_policy, step_params, step_game, *_ = maml_setup(
            tasks, envs, {"outer_epochs": epochs}, device)
        optimizer = step_learner.make_optimizer(step_params)
        initial = {name: value.detach().clone() for name, value in step_params.items()}

        def run() -> None:
            with torch.no_grad():
                for name, value in step_params.items():
                    value.copy_(initial[name])
            step_learner.meta_train_step(step_policy, step_params, optimizer, step_game, 3)
        return run

    def loop_iteration() -> None:
        """Sampling batched; the adaptation (with its graph, reused by the meta-gradient)
        and the meta-gradient as per-task loops."""
        shared = detached(params)
        batch = learner.task_batch(sample_episodes(game, policy, expand_params(shared, tasks), 3))
        adapted = reference_adapt(policy, params, batch, inner)
        stacked = {name: torch.stack([task[name].detach() for task in adapted]) for name in params}
        task_post = learner.task_batch(sample_episodes(game, policy, stacked, 4))
        reference_meta_gradient(policy, params, MetaBatch(batch, task_post), inner, surrogate,
                                adapted=adapted)

    def task_by_task_iteration() -> None:
        """The same meta-iteration one task at a time, as code without batching over tasks
        runs it: sample the task's episodes, adapt, sample again, its meta-gradient."""
        shared = detached(params)
        total = {name: torch.zeros_like(value) for name, value in params.items()}
        for task_game in task_games:
            batch = learner.task_batch(sample_episodes(task_game, policy,
                                                       expand_params(shared, 1), 3))
            adapted = reference_adapt(policy, params, batch, inner)
            one = {name: value.detach().unsqueeze(0) for name, value in adapted[0].items()}
            task_post = learner.task_batch(sample_episodes(task_game, policy, one, 4))
            for name, value in reference_meta_gradient(policy, params, MetaBatch(batch, task_post),
                                                       inner, surrogate, adapted=adapted).items():
                total[name] += value / tasks

    iterations = seconds(trainer_iteration(1), repeats)
    result = {
        "iteration_vmap_s": statistics.median(iterations),
        "iteration_vmap_min_s": min(iterations),
        "training_iteration_s": median_seconds(trainer_iteration(5), max(3, repeats // 3)),
        "sampling_one_round_s": median_seconds(
            lambda: sample_episodes(game, policy, expand_params(detached(params), tasks), 5),
            repeats),
        "gradient_vmap_s": median_seconds(vmap_gradient, repeats),
        "gradient_loop_s": median_seconds(loop_gradient, repeats),
        "iteration_loop_s": median_seconds(loop_iteration, repeats),
        "iteration_task_by_task_s": median_seconds(task_by_task_iteration, repeats),
    }
    return result


def batched_steps_per_s(game_id: str, tasks: int, envs: int, steps: int,
                        device: str = "cpu") -> float:
    """Env steps/s of a native game's batched view, random actions."""
    spec = get_registry().game(game_id)
    variants = spec.variant_space.sample("train", tasks, seed=0)
    game = spec.make_batched(variants, envs, device)
    generator = torch.Generator().manual_seed(0)

    def action() -> torch.Tensor:
        if spec.is_discrete:
            return torch.randint(0, int(spec.action_space.n), (tasks, envs), generator=generator)
        return torch.rand((tasks, envs, spec.action_space.shape[0]), generator=generator) * 0.2 - 0.1

    actions = [action().to(device) for _ in range(steps)]
    game.reset(0)
    synchronize()
    start = time.perf_counter()
    for a in actions:
        game.step(a)
    synchronize()
    return tasks * envs * steps / (time.perf_counter() - start)


def sync_vector_steps_per_s(game_id: str, num_envs: int, steps: int) -> float:
    """Env steps/s of the gymnasium view through SyncVectorEnv (auto-reset on), random actions."""
    spec = get_registry().game(game_id)
    variants = spec.variant_space.sample("train", num_envs, seed=0)
    vector = gymnasium.vector.SyncVectorEnv([lambda v=v: spec.make_env(v) for v in variants])
    vector.reset(seed=0)
    vector.action_space.seed(0)
    actions = [vector.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for a in actions:
        vector.step(a)
    elapsed = time.perf_counter() - start
    vector.close()
    return num_envs * steps / elapsed


def bench_envs(quick: bool, device: str = "cpu") -> list[dict[str, float | str]]:
    rows = []
    for game_id in ("gridnav", "pointnav", "duel"):
        for tasks, envs, steps in ((20, 20, 200), (1000, 100, 20 if quick else 50)):
            batched = batched_steps_per_s(game_id, tasks, envs, steps, device)
            # SyncVectorEnv's cost per env step does not depend on the number of envs (a Python
            # loop over them), so it is measured on at most 2,000 envs.
            sync_envs = min(tasks * envs, 2000)
            sync = sync_vector_steps_per_s(game_id, sync_envs, 10 if sync_envs > 400 else 50)
            rows.append({"game": game_id, "batch": f"{tasks}x{envs}", "batched_steps_per_s": batched,
                         "sync_vector_envs": sync_envs, "sync_vector_steps_per_s": sync,
                         "ratio": batched / sync})
    return rows


def bench_rl2(game_id: str, tasks: int, envs: int, hidden: int, repeats: int,
              device: str = "cpu") -> dict[str, float]:
    """One rl2 training iteration and its trial rollout, and the MLP policy's rollout of the
    same rounds (the reference), on ``tasks`` x ``envs`` training variants of ``game_id``."""
    registry = get_registry()
    spec = registry.game(game_id)
    rl2 = registry.algorithm("rl2").make({"hidden_size": hidden})
    torch.manual_seed(0)
    policy = rl2.make_policy(spec.observation_space, spec.action_space).to(device)
    params = policy_params(policy)
    optimizer = rl2.make_optimizer(params)
    mlp_learner: Learner = registry.algorithm("maml").make({})
    mlp = mlp_learner.make_policy(spec.observation_space, spec.action_space).to(device)
    mlp_params = expand_params(detached(policy_params(mlp)), tasks)
    game = spec.make_batched(spec.variant_space.sample("train", tasks, seed=0), envs, device)
    episodes = rl2.trial_episodes
    steps = float(sample_trials(game, policy, episodes, 0).num_steps)
    counter = iter(range(10**6))
    iteration = median_seconds(lambda: rl2.meta_train_step(policy, params, optimizer, game,
                                                           next(counter)), repeats)
    trial = median_seconds(lambda: sample_trials(game, policy, episodes, 0), repeats)
    mlp_steps = float(sum(sample_episodes(game, mlp, mlp_params, k).num_steps
                          for k in range(episodes)))
    rounds = median_seconds(lambda: [sample_episodes(game, mlp, mlp_params, k)
                                     for k in range(episodes)], repeats)
    return {"iteration_s": iteration, "iteration_steps_per_s": steps / iteration,
            "trial_steps_per_s": steps / trial, "mlp_rounds_steps_per_s": mlp_steps / rounds}


def print_rl2(repeats: int, device: str) -> None:
    """The rl2 section of the benchmark (see the module doc)."""
    print("\n== rl2: training iteration (trial of 2 episodes, 4 PPO epochs, BPTT) and its "
          "rollout vs the MLP policy's rollout of the same rounds ==")
    for game_id, tasks, envs in (("gridnav", 20, 10), ("pointnav", 20, 20)):
        widths = {hidden: bench_rl2(game_id, tasks, envs, hidden, repeats, device)
                  for hidden in (128, 256)}
        for hidden, row in widths.items():
            print(f"{game_id} {tasks}x{envs}, GRU {hidden}: iteration {row['iteration_s']:.3f} s "
                  f"({row['iteration_steps_per_s']:,.0f} env steps/s of training); rollout "
                  f"{row['trial_steps_per_s']:,.0f} steps/s vs MLP "
                  f"{row['mlp_rounds_steps_per_s']:,.0f} steps/s, ratio "
                  f"{row['mlp_rounds_steps_per_s'] / row['trial_steps_per_s']:.2f}x")
        print(f"{game_id}: GRU 256 / GRU 128 iteration time "
              f"{widths[256]['iteration_s'] / widths[128]['iteration_s']:.2f}x")


def len_repeats(tasks: int, repeats: int) -> int:
    """Repeats of the MAML timings at ``tasks`` tasks (fewer for the slow 100-task runs)."""
    return repeats if tasks == 20 else max(3, repeats // 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu",
                        help="where MAML and the batched games run: cpu (default) or cuda")
    parser.add_argument("--only", choices=("rl2",), help="run one section only")
    parser.add_argument("--child-maml-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 5 if args.quick else 15
    if args.child_maml_only:
        tune_malloc()
        print(json.dumps(bench_maml(20, 20, repeats)))
        return
    tuned = tune_malloc()
    try:
        device = str(resolve_device(args.device))
    except GameadaptError as error:
        sys.exit(f"error: {error}")
    where = (f"device {torch.cuda.get_device_name()}" if device.startswith("cuda")
             else f"{args.threads} thread(s), {os.cpu_count()} CPU(s)")
    print(f"torch {torch.__version__}, {where}, "
          f"malloc tuning {'on' if tuned else 'unavailable'}; {host_speed()}")
    if args.only == "rl2":
        print_rl2(repeats, device)
        return
    print("\n== MAML at the pointnav paper setting (20 tasks x 20 episodes x 100 steps, "
          "1 inner step, second order) ==")
    for tasks in (20, 100):
        maml = bench_maml(tasks, 20, len_repeats(tasks, repeats), device)
        vmap_s = maml["iteration_vmap_s"]
        print(f"{tasks} tasks: meta-iteration  vmap {vmap_s:.3f} s  "
              f"per-task loop {maml['iteration_task_by_task_s']:.3f} s  "
              f"ratio {maml['iteration_task_by_task_s'] / vmap_s:.2f}x  "
              f"(each task sampled, adapted and differentiated on its own)")
        print(f"{tasks} tasks: meta-iteration  vmap {vmap_s:.3f} s  "
              f"loop in adaptation + meta-gradient {maml['iteration_loop_s']:.3f} s  "
              f"ratio {maml['iteration_loop_s'] / vmap_s:.2f}x  "
              f"(sampling batched for both; one round {maml['sampling_one_round_s']:.3f} s)")
        print(f"{tasks} tasks: meta-gradient   vmap {maml['gradient_vmap_s']:.3f} s  "
              f"per-task loop {maml['gradient_loop_s']:.3f} s  "
              f"ratio {maml['gradient_loop_s'] / maml['gradient_vmap_s']:.2f}x  "
              f"(fixed data, the adaptation included)")
        print(f"{tasks} tasks: meta-iteration  vmap {maml['iteration_vmap_s']:.3f} s median, "
              f"{maml['iteration_vmap_min_s']:.3f} s fastest of {len_repeats(tasks, repeats)}; "
              f"training iteration of the maml defaults (5 outer epochs) "
              f"{maml['training_iteration_s']:.3f} s")
        if tasks == 20:
            reference = maml
    print("\n== env steps/s: batched tensor view vs gymnasium.vector.SyncVectorEnv ==")
    for row in bench_envs(args.quick, device):
        print(f"{row['game']:8s} {row['batch']:>8s}: batched {row['batched_steps_per_s']:>12,.0f}/s  "
              f"SyncVectorEnv ({row['sync_vector_envs']} envs) "
              f"{row['sync_vector_steps_per_s']:>10,.0f}/s  ratio {row['ratio']:.0f}x")
    print_rl2(repeats, device)
    if device != "cpu":
        return
    print("\n== malloc tuning (child process with it disabled) ==")
    child = subprocess.run([sys.executable, __file__, "--child-maml-only", "--threads",
                            str(args.threads)] + (["--quick"] if args.quick else []),
                           env={**os.environ, DISABLE_ENV: "1"}, capture_output=True,
                           text=True, check=True)
    untuned = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"20 tasks meta-iteration (vmap): tuned {reference['iteration_vmap_s']:.3f} s, "
          f"untuned {untuned['iteration_vmap_s']:.3f} s, "
          f"ratio {untuned['iteration_vmap_s'] / reference['iteration_vmap_s']:.2f}x")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
