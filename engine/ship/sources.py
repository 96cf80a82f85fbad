"""Trained policies on disk: a run folder, or an adapted policy made by ``gameadapt adapt``.

Both load into a :class:`PolicySource` (CPU policy + game + provenance) that ``export`` and
``adapt`` work from; the policy is an :class:`~gameadapt.learn.policy.MLPPolicy` (gradient
family), a :class:`~gameadapt.learn.recurrent.RecurrentPolicy` (RL², which is exported with
its state) or a :class:`~gameadapt.learn.context_policy.ContextPolicy` (the context family,
exported with its posterior update); the last two adapt as they play and are never adapted
here. An adapted policy is a folder with ``adapted.pt`` (a checkpoint holding
the policy's state and its provenance) and ``adapted.json`` (the same provenance, readable).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError, exception_line
from ..files import (
    atomic_write_json,
    fault_point,
    fsync_tree,
    restore_aside,
    staging_folder_beside,
)
from ..game import GameSpec
from ..host.registry import get_registry
from ..learn.context_policy import Z_UPDATES, ContextPolicy
from ..learn.policy import MLPPolicy
from ..learn.recurrent import RecurrentPolicy
from ..locks import lock_output
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.runs import RunDir
from ..train.session import (
    Session,
    build_session,
    current_providers,
    load_session,
    make_config,
    recorded_options,
    run_train_config,
)
from ..variants import Variant

ShippedPolicy = MLPPolicy | RecurrentPolicy | ContextPolicy  # the classes algorithms make
ADAPTED_CHECKPOINT = "adapted.pt"
ADAPTED_SUMMARY = "adapted.json"


@dataclass
class PolicySource:
    """A loaded policy with everything needed to adapt, export or describe it."""

    kind: str  # "run" or "adapted"
    path: Path
    spec: GameSpec
    session: Session  # algorithm, policy and params (on CPU)
    variant: Variant  # the variant it was adapted to (a run: the game's default variant)
    provenance: dict[str, Any]
    providers: dict[str, Any]  # the distributions that provide its game and algorithm

    @property
    def policy(self) -> ShippedPolicy:
        """The policy: an MLP (gradient family), a recurrent one (RL²) or a context one."""
        policy = self.session.policy
        if not isinstance(policy, (MLPPolicy, RecurrentPolicy, ContextPolicy)):
            raise GameadaptError(f"{self.path}: cannot ship a {type(policy).__name__} (only "
                                 f"MLPPolicy, RecurrentPolicy and ContextPolicy policies)")
        return policy

    @property
    def recurrent(self) -> bool:
        """True for a recurrent policy, which adapts in its state rather than its weights."""
        return isinstance(self.policy, RecurrentPolicy)

    @property
    def context(self) -> bool:
        """True for a context policy, which adapts in its task posterior."""
        return isinstance(self.policy, ContextPolicy)

    @property
    def adapts_in_play(self) -> bool:
        """True for the trial families (recurrent, context): no weights to adapt."""
        return not isinstance(self.policy, MLPPolicy)

    @property
    def mlp_policy(self) -> MLPPolicy:
        """The policy of a gradient-family source (a one-line error for any other)."""
        policy = self.policy
        if not isinstance(policy, MLPPolicy):
            raise GameadaptError(f"{self.path} holds a {self.session.algorithm.family} policy "
                                 f"({self.session.algorithm.name!r}): it has no weights to adapt")
        return policy


def is_adapted(path: Path) -> bool:
    """True if ``path`` is a folder written by ``gameadapt adapt``."""
    return (Path(path) / ADAPTED_CHECKPOINT).is_file()


def load_policy_source(path: Path) -> PolicySource:
    """Load a run folder or an adapted-policy folder (one-line errors for anything else)."""
    path = Path(path)
    restore_aside(path)  # a replacement of it killed midway: the old copy back
    if is_adapted(path):
        return _load_adapted(path)
    run = RunDir(path)
    if not run.config_path.is_file():
        raise GameadaptError(f"{path} is neither a training run nor an adapted policy")
    config = dataclasses.replace(run_train_config(run), device="cpu")
    if not run.checkpoint_path.is_file():
        raise GameadaptError(f"run {path} has no checkpoint yet")
    session = load_session(run, config)
    _pin_z_update(session, run.read_config())
    provenance = {"run": str(path), "algorithm": config.algorithm, "seed": config.seed,
                  "iterations": session.iteration, "adapted": None}
    providers = run.read_config().get("providers") or current_providers(config.game,
                                                                        config.algorithm)
    return PolicySource("run", path, session.spec, session, session.spec.variant_space.default(),
                        provenance, providers)


def _pin_z_update(session: Session, saved: dict[str, Any]) -> None:
    """A context run recorded before the ``z_update`` option existed acted with
    ``"episode"``: its policy keeps the rule it was trained with, whatever the default."""
    if not isinstance(session.policy, ContextPolicy):
        return
    rule = (saved.get("algorithm_config") or {}).get("z_update", "episode")
    if rule not in Z_UPDATES:
        raise GameadaptError(f"the run's config.json records z_update {rule!r}; expected one "
                             f"of {', '.join(Z_UPDATES)}")
    session.policy.z_update = rule


def save_adapted(out_dir: Path, source: PolicySource, policy_state: dict[str, torch.Tensor],
                 variant: Variant, provenance: dict[str, Any]) -> None:
    """Write an adapted policy folder; refuses to overwrite an existing one.

    The folder is written whole in ``PARENT/.NAME.adapt-*`` and renamed into place, with
    ``out_dir`` locked (:func:`~gameadapt.locks.lock_output`): a killed adapt leaves no
    half folder, and the next one removes its staging folder. Fault stage
    ``adapt:staged``: before the rename.
    """
    out_dir = Path(out_dir)
    with lock_output(out_dir, "gameadapt adapt"):
        for leftover in out_dir.parent.glob(f".{out_dir.name}.adapt-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if (out_dir / ADAPTED_CHECKPOINT).exists() or (out_dir.exists() and (
                not out_dir.is_dir() or any(out_dir.iterdir()))):
            raise GameadaptError(f"{out_dir} already exists; adapt never overwrites, choose "
                                 f"another -o")
        staging = staging_folder_beside(out_dir, "adapt")
        try:
            _write_adapted(staging, source, policy_state, variant, provenance)
            fsync_tree(staging)
            fault_point("adapt:staged")
            os.rename(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _write_adapted(out_dir: Path, source: PolicySource, policy_state: dict[str, torch.Tensor],
                   variant: Variant, provenance: dict[str, Any]) -> None:
    """``adapted.pt`` and ``adapted.json`` into ``out_dir``."""
    config = source.session.config
    payload = {
        "kind": "adapted",
        "game": source.spec.id,
        "algorithm": config.algorithm,
        "train": dataclasses.asdict(config),
        "algorithm_config": source.session.algorithm.options(),
        "policy": {k: v.detach().cpu() for k, v in policy_state.items()},
        "variant": variant,
        "provenance": provenance,
        "providers": source.providers,
    }
    save_checkpoint(out_dir / ADAPTED_CHECKPOINT, payload)
    atomic_write_json(out_dir / ADAPTED_SUMMARY, {"game": source.spec.id, "variant": variant,
                                                  "provenance": provenance,
                                                  "providers": source.providers})


def _load_adapted(path: Path) -> PolicySource:
    payload = load_checkpoint(path / ADAPTED_CHECKPOINT, expect={"kind": "adapted"})
    registry = get_registry()
    config = dataclasses.replace(make_config(payload["train"], f"{path / ADAPTED_CHECKPOINT}",
                                             "train."), device="cpu")
    registry.check_providers(payload.get("providers"), {"game": config.game,
                                                        "algorithm": config.algorithm},
                             f"adapted policy {path}")
    spec = registry.game(payload["game"])
    session = build_session(config, recorded_options(payload, config))
    try:
        session.policy.load_state_dict(payload["policy"])
    except RuntimeError as exc:
        raise GameadaptError(f"{path / ADAPTED_CHECKPOINT} does not fit the game's policy "
                             f"({exception_line(exc)[:160]})") from None
    variant = spec.variant_space.validate(payload["variant"])
    providers = payload.get("providers") or current_providers(config.game, config.algorithm)
    return PolicySource("adapted", path, spec, session, variant, dict(payload["provenance"]),
                        providers)
