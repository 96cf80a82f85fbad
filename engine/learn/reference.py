"""The per-task Python-loop references of :mod:`gameadapt.learn.meta`.

The same adaptation and meta-gradient as the batched ``torch.func`` versions, computed task
by task with ``torch.autograd.grad(create_graph=True)``: what the tests compare the vmapped
math against, and what ``bench/speed.py`` times it against.
"""

from __future__ import annotations

import torch

from ..algorithm import InnerLoop
from .meta import MetaBatch, Surrogate, TaskBatch, inner_loss, masked_mean, surrogate_loss
from .policy import MLPPolicy, Params, evaluate_actions


def reference_adapt(policy: MLPPolicy, params: Params, pre: TaskBatch, inner: InnerLoop
                    ) -> list[Params]:
    """:func:`~gameadapt.learn.meta.adapt` task by task: one dict per task."""
    adapted = []
    for index in range(pre.num_tasks):
        task_pre, task_params = pre.task(index), dict(params)
        for _ in range(inner.steps):
            loss = inner_loss(policy, task_params, task_pre, inner.objective)
            grads = torch.autograd.grad(loss, list(task_params.values()),
                                        create_graph=not inner.first_order)
            task_params = {name: value - inner.lr * g
                           for (name, value), g in zip(task_params.items(), grads)}
        adapted.append(task_params)
    return adapted


def reference_meta_gradient(policy: MLPPolicy, params: Params, batch: MetaBatch,
                            inner: InnerLoop, surrogate: Surrogate,
                            adapted: list[Params] | None = None) -> Params:
    """:func:`~gameadapt.learn.meta.meta_gradient` computed task by task.

    ``adapted``: :func:`reference_adapt` of ``params`` computed earlier (not recomputed).
    """
    if adapted is None:
        adapted = reference_adapt(policy, params, batch.pre, inner)
    total = torch.zeros(())
    for index, task_params in enumerate(adapted):
        task_post = batch.post.task(index)
        log_probs, _ = evaluate_actions(policy, task_params, task_post.observations,
                                        task_post.actions)
        per_step = surrogate_loss(log_probs, task_post, surrogate.objective, surrogate.clip)
        total = total + masked_mean(per_step, task_post.mask)
    total = total / batch.post.num_tasks
    return dict(zip(params, torch.autograd.grad(total, list(params.values()))))
