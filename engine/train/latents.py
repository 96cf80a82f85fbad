"""The learnt task space of a context-family run, shown: where held-out variants land.

Each variant is played for ``episodes`` episodes (one trial, ``z`` drawn from the posterior
as in training) and the posterior mean after all of its transitions is kept. The means are
projected to two dimensions by PCA and coloured by the game's
:class:`~gameadapt.game.TaskLabel` (or a variant parameter the user names). One number says
how well the space separates the tasks, measured in the full latent space with leave-one-out:
for a category, the accuracy of the nearest class centroid (against chance); for a number,
the R² of a linear fit (for an angle, of its cosine and sine).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError
from ..game import GameSpec, TaskLabel, TaskLabelKind
from ..hashrandom import derive_seed
from ..learn.context_policy import ContextPolicy
from ..learn.posterior import posterior, total_sums
from ..learn.trials import sample_trials
from ..learn.vector import make_batched_game
from ..variants import Choice, Split, Variant
from .runs import RunDir
from .session import Session, load_session


@dataclass(frozen=True)
class LatentMap:
    """Posterior means ``[N, L]`` of ``N`` variants, their labels, and the 2-D projection."""

    game: str
    label: str
    kind: str
    episodes: int
    means: list[list[float]]
    labels: list[Any]
    points: list[list[float]]  # [N, 2]: the PCA projection
    explained: list[float]  # share of the means' variance on each of the two axes
    separation: dict[str, Any]

    def summary(self) -> str:
        """One line for the terminal."""
        share = sum(self.explained)
        sep = self.separation
        what = (f"nearest-centroid accuracy {sep['value']:.0%} (chance {sep['chance']:.0%})"
                if sep["measure"] == "accuracy" else f"linear-fit R² {sep['value']:.2f}")
        return (f"{self.game}: posterior means of {len(self.labels)} variants after "
                f"{self.episodes} episode(s), coloured by {self.label}; the picture's two axes "
                f"hold {share:.0%} of their variance; {what} (leave-one-out, all "
                f"{len(self.means[0])} dims)")


def task_label(spec: GameSpec, color: str | None) -> TaskLabel:
    """The label to colour by: the parameter ``color`` ("rules.controls"), else the game's."""
    if color is None:
        if spec.task_label is None:
            raise GameadaptError(f"game {spec.id!r} declares no task label: name a variant "
                                 f"parameter with --color, e.g. --color "
                                 f"{_example(spec)}")
        return spec.task_label
    part, _, name = color.partition(".")
    param = spec.variant_space.by_name.get(name)
    if param is None or param.part != part:
        raise GameadaptError(f"--color {color!r} is not a variant parameter of {spec.id!r} "
                             f"(e.g. {_example(spec)})")
    kind: TaskLabelKind = "category" if isinstance(param.domain, Choice) else "number"
    return TaskLabel(color, lambda variant: variant[part][name], kind)


def _example(spec: GameSpec) -> str:
    param = spec.variant_space.params[-1]
    return f"{param.part}.{param.name}"


def posterior_means(session: Session, variants: Sequence[Variant], episodes: int,
                    seed: int) -> torch.Tensor:
    """The learner's posterior mean after ``episodes`` episodes on each variant, ``[N, L]``."""
    policy = session.policy
    if not isinstance(policy, ContextPolicy):
        raise GameadaptError(f"latents needs a run of the context family; this run's "
                             f"{session.algorithm.name!r} adapts in its "
                             f"{session.algorithm.family} state")
    with contextlib.closing(make_batched_game(session.spec, variants, 1, session.device,
                                              session.agents)) as game:
        trials = sample_trials(game, policy, episodes, derive_seed(seed, 0))
    with torch.no_grad():
        mean, _ = posterior(total_sums(policy.factors(trials.inputs), trials.mask))
    return mean[:, 0]  # the first row of each env is the learner


def project(means: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """PCA to two dimensions: the points ``[N, 2]`` and each axis's share of the variance."""
    centred = means.double() - means.double().mean(0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    axes = vh[:2].T
    points = centred @ axes
    if points.shape[1] < 2:
        points = torch.cat([points, torch.zeros(len(points), 2 - points.shape[1],
                                                dtype=points.dtype)], 1)
    total = float((singular ** 2).sum()) or 1.0
    return points, [float(s ** 2) / total for s in singular[:2]]


def separation(means: torch.Tensor, labels: Sequence[Any], kind: str) -> dict[str, Any]:
    """How well the means tell the labels apart (leave-one-out; see the module doc)."""
    x = means.double()
    if kind == "category":
        classes = sorted(set(labels), key=str)
        hits = 0
        for i, label in enumerate(labels):
            others = [j for j in range(len(labels)) if j != i]
            centroids = {c: x[[j for j in others if labels[j] == c]].mean(0) for c in classes
                         if any(labels[j] == c for j in others)}
            nearest = min(centroids, key=lambda c: float((x[i] - centroids[c]).norm()))
            hits += nearest == label
        chance = max(labels.count(c) for c in classes) / len(labels)
        return {"measure": "accuracy", "value": hits / len(labels), "chance": chance}
    values = torch.tensor([float(v) for v in labels], dtype=torch.float64)
    targets = (torch.stack([torch.cos(torch.deg2rad(values)), torch.sin(torch.deg2rad(values))], 1)
               if kind == "angle" else values.unsqueeze(1))
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    hat = design @ torch.linalg.pinv(design)
    residual = (targets - hat @ targets) / (1 - hat.diagonal()).clamp_min(1e-9).unsqueeze(1)
    total = ((targets - targets.mean(0)) ** 2).sum()
    return {"measure": "r2", "value": float(1 - (residual ** 2).sum() / total), "chance": 0.0}


def latent_map(run_path: Path, tasks: int, episodes: int, seed: int, split: Split,
               color: str | None) -> LatentMap:
    """Play ``tasks`` variants of ``split`` for ``episodes`` episodes and map the posteriors."""
    if tasks < 3 or episodes < 1:
        raise GameadaptError("--tasks must be >= 3 and --episodes >= 1")
    session = load_session(RunDir(Path(run_path)))
    label = task_label(session.spec, color)
    variants = session.spec.variant_space.sample(split, tasks, seed)
    means = posterior_means(session, variants, episodes, seed)
    labels = [label.value(variant) for variant in variants]
    points, explained = project(means.cpu())
    return LatentMap(session.spec.id, label.name, label.kind, episodes, means.tolist(), labels,
                     points.tolist(), explained, separation(means.cpu(), labels, label.kind))


def plot_latent_map(data: LatentMap, path: Path, pyplot: Any) -> None:
    """Save the PCA picture as a PNG: one dot per variant, coloured by its label."""
    figure, axes = pyplot.subplots(figsize=(6, 5))
    xs, ys = zip(*data.points)
    if data.kind == "category":
        for index, value in enumerate(sorted(set(data.labels), key=str)):
            chosen = [i for i, label in enumerate(data.labels) if label == value]
            axes.scatter([xs[i] for i in chosen], [ys[i] for i in chosen], s=18,
                         color=f"C{index % 10}", label=str(value))
        axes.legend(fontsize=7, title=data.label, title_fontsize=8, loc="best")
    else:
        cmap = "twilight" if data.kind == "angle" else "viridis"
        dots = axes.scatter(xs, ys, c=[float(v) for v in data.labels], cmap=cmap, s=18)
        figure.colorbar(dots, ax=axes, label=data.label)
    axes.set_xlabel(f"PC 1 ({data.explained[0]:.0%} of the variance)")
    axes.set_ylabel(f"PC 2 ({data.explained[1]:.0%})" if len(data.explained) > 1 else "PC 2")
    axes.set_title(f"{data.game}: task posterior means after {data.episodes} episode(s)",
                   fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


