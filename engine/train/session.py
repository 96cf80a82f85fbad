"""A training session: its validated config, and the policy, optimiser and algorithm it drives.

:func:`build_session` makes a fresh one from a :class:`TrainConfig`, :func:`start_run`
creates its run folder, :func:`load_session` rebuilds one from a run folder's config and
latest checkpoint (the checkpoint holds the policy, the optimiser and the iteration, so a
resumed run ends bit-identical to an uninterrupted one on CPU). The seeding of the policy's
initialisation happens inside :func:`torch.random.fork_rng`: the caller's random state is
left as it was.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..algorithm import AlgorithmSpec, MetaAlgorithm
from ..errors import GameadaptError, exception_line
from ..game import GameSpec
from ..hashrandom import derive_seed
from ..host.registry import get_registry
from ..learn.policy import policy_params, resolve_device
from ..limits import MAX_ITERATIONS, check_count, check_seed
from ..textfiles import load_toml
from ..variants import SPLITS, Split, Variant
from .checkpoint import load_checkpoint
from .distributed import World
from .memory import check_training_resources
from .runs import RunDir, RunError
from .spacecheck import check_game_views


DEVICE_NAMES = re.compile(r"auto|cpu|cuda(:[0-9]+)?")  # what resolve_device takes
Check = Callable[[Any, str], None]


def _count(value: Any, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GameadaptError(f"invalid {label} {value!r}: must be an integer >= 1")


def _iterations(value: Any, label: str) -> None:
    check_count(value, label, 1, MAX_ITERATIONS)


def _name(value: Any, label: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise GameadaptError(f"invalid {label} {value!r}: must be a non-empty string")


def _device(value: Any, label: str) -> None:
    if not isinstance(value, str) or not DEVICE_NAMES.fullmatch(value):
        raise GameadaptError(f"invalid {label} {value!r}: use auto, cpu, cuda or cuda:N")


def _split(value: Any, label: str) -> None:
    if value not in SPLITS:
        raise GameadaptError(f"invalid {label} {value!r}: use train or test")


def _flag(value: Any, label: str) -> None:
    if not isinstance(value, bool):
        raise GameadaptError(f"invalid {label} {value!r}: must be true or false")


def _table(value: Any, label: str) -> None:
    if not isinstance(value, dict):
        raise GameadaptError(f"invalid {label} {value!r}: must be a table of key = value")


def _seed(value: Any, label: str) -> None:
    check_seed(value, label)


FIELD_CHECKS: dict[str, Check] = {
    "game": _name, "algorithm": _name, "iterations": _iterations, "meta_batch": _count,
    "envs_per_task": _count, "variant_split": _split, "device": _device, "seed": _seed,
    "checkpoint_every": _iterations, "share_policy": _flag, "options": _table,
}


@dataclass(frozen=True)
class TrainConfig:
    """What ``gameadapt train`` runs; ``options`` are the algorithm's hyper-parameters."""

    game: str
    algorithm: str = "maml"
    iterations: int = 100
    meta_batch: int = 20
    envs_per_task: int = 20
    variant_split: Split = "train"
    device: str = "auto"
    seed: int = 0
    checkpoint_every: int = 5
    share_policy: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self, prefix: str | None = None) -> None:
        """Raise a one-line :class:`GameadaptError` for the first invalid value.

        Messages name flags (``meta-batch``), or with ``prefix`` the file's fields
        (``prefix + "meta_batch"``).
        """
        check_fields(dataclasses.asdict(self), prefix)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_fields(values: Mapping[str, Any], prefix: str | None = None) -> None:
    """Check each TrainConfig field present in ``values`` (see :meth:`TrainConfig.validate`)."""
    for name, check in FIELD_CHECKS.items():
        if name in values:
            check(values[name], name.replace("_", "-") if prefix is None else prefix + name)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML training config: top-level TrainConfig keys plus an ``[options]`` table.

    Every key is checked here, so an error names the file and the key.
    """
    data = load_toml(path, "config file")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GameadaptError(f"config file {path}: unknown key {unknown[0]!r} "
                             f"(known: {', '.join(sorted(known))})")
    try:
        check_fields(data, "")
    except GameadaptError as exc:
        raise GameadaptError(f"config file {path}: {exc}") from None
    return data


def make_config(values: Mapping[str, Any], where: str | None = None,
                prefix: str = "") -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping of its fields.

    ``where`` (a file) starts every message, which then names fields as ``prefix + name``.
    """
    try:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GameadaptError(f"unknown training setting {prefix}{unknown[0]}")
        if "game" not in values:
            raise GameadaptError("no game given" if where is None else f"no {prefix}game")
        config = TrainConfig(**values)
        config.validate(None if where is None else prefix)
    except GameadaptError as exc:
        if where is None:
            raise
        raise GameadaptError(f"{where}: {exc}") from None
    return config


def run_train_config(run: RunDir) -> TrainConfig:
    """A run's training config, read from ``config.json`` and validated field by field."""
    saved = run.read_config()
    return make_config(saved["train"], str(run.config_path), "train.")


def iteration_seed(seed: int, iteration: int) -> int:
    """The seed of everything random in one iteration."""
    return derive_seed(seed, iteration)


def iteration_variants(config: TrainConfig, spec: GameSpec, iteration: int) -> list[Variant]:
    """The meta-batch of variants that ``iteration`` trains on."""
    seed = iteration_seed(config.seed, iteration)
    return spec.variant_space.sample(config.variant_split, config.meta_batch, seed)


@dataclass
class Session:
    """Everything a running or resumed training holds in memory."""

    config: TrainConfig
    spec: GameSpec
    algorithm_spec: AlgorithmSpec
    algorithm: MetaAlgorithm
    policy: torch.nn.Module
    params: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    device: torch.device
    iteration: int = 0
    stopped: str | None = None  # why the last train() call stopped early, if it did
    world: World | None = None  # the process group of a distributed run (train.distributed)

    @property
    def writer(self) -> bool:
        """True if this process writes the run folder (one process, or rank 0)."""
        return self.world is None or self.world.writer

    @property
    def agents(self) -> tuple[str, ...]:
        """The agents the policy drives in a multi-agent game (empty for single-agent ones)."""
        return self.spec.controlled_agents(self.config.share_policy)

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "game": self.config.game,
            "algorithm": self.config.algorithm,
            "iteration": self.iteration,
            "engine_version": __version__,
            "policy": {k: v.detach().cpu() for k, v in self.policy.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
        }


def build_session(config: TrainConfig,
                  algorithm_options: Mapping[str, Any] | None = None) -> Session:
    """Resolve the game and algorithm and make a fresh policy and optimiser.

    ``algorithm_options`` (a run's recorded ``algorithm_config``) replace ``config.options``
    when given. The game's declared spaces are checked against its views on the first
    training variant (:func:`~gameadapt.train.spacecheck.check_game_views`) before anything
    is built.
    """
    registry = get_registry()
    spec = registry.game(config.game)
    algorithm_spec = registry.algorithm(config.algorithm)
    kind = "discrete" if spec.is_discrete else "continuous"
    if kind not in algorithm_spec.action_kinds:
        raise GameadaptError(f"algorithm {algorithm_spec.id!r} does not support {kind} actions "
                             f"(game {spec.id!r})")
    if config.share_policy and not spec.is_multi_agent:
        raise GameadaptError(f"--share-policy needs a multi-agent game; {spec.id!r} has one agent")
    algorithm = algorithm_spec.make(dict(config.options if algorithm_options is None
                                         else algorithm_options))
    check_training_resources(config, spec, algorithm)
    device = resolve_device(config.device)
    check_game_views(spec, iteration_variants(config, spec, 0)[0], device,
                     spec.controlled_agents(config.share_policy))
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(config.seed)
        policy = algorithm.make_policy(spec.observation_space, spec.action_space).to(device)
    params = policy_params(policy)
    optimizer = algorithm.make_optimizer(params)
    return Session(config, spec, algorithm_spec, algorithm, policy, params, optimizer, device)


def load_session(run: RunDir, config: TrainConfig | None = None) -> Session:
    """Rebuild a session from a run folder's config and latest checkpoint.

    The algorithm is rebuilt from the recorded ``algorithm_config`` (see
    :func:`recorded_options`). The distributions that provided the run's game and algorithm
    must still provide them (another version only warns; see
    :meth:`Registry.check_providers`).
    """
    config = config or run_train_config(run)
    check_run_providers(run, config)
    session = build_session(config, recorded_options(run.read_config(), config))
    if run.checkpoint_path.exists():
        payload = load_checkpoint(run.checkpoint_path,
                                  expect={"game": config.game, "algorithm": config.algorithm})
        try:
            session.policy.load_state_dict(payload["policy"])
            session.optimizer.load_state_dict(payload["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise RunError(f"checkpoint {run.checkpoint_path} does not fit this run's policy "
                           f"({exception_line(exc)[:160]})") from None
        session.iteration = int(payload["iteration"])
    return session


def recorded_options(saved: Mapping[str, Any], config: TrainConfig) -> dict[str, Any] | None:
    """The fully resolved algorithm options a run recorded at its start (``algorithm_config``),
    so that a default changed since never changes a saved run; ``None`` (use
    ``config.options`` with today's defaults) for runs recorded without them."""
    recorded = saved.get("algorithm_config")
    if not isinstance(recorded, dict) or saved.get("algorithm") != config.algorithm:
        return None
    return recorded


def check_run_providers(run: RunDir, config: TrainConfig | None = None) -> None:
    """The run's game and algorithm must come from the distributions that made it."""
    saved = run.read_config()
    config = config or run_train_config(run)
    get_registry().check_providers(saved.get("providers"), {"game": config.game,
                                                            "algorithm": config.algorithm},
                                   f"run {run.path}")


def start_run(config: TrainConfig, run: RunDir, **extra: Any) -> Session:
    """Create a run folder for ``config`` and return its fresh session.

    ``config.json`` records the resolved settings and which distributions provide the game
    and the algorithm (checked whenever the run is loaded again); ``extra`` keys are added.
    """
    session = build_session(config)
    run.create({"format": "gameadapt-run/1", "engine_version": __version__,
                "game": config.game, "algorithm": config.algorithm, "train": config.to_json(),
                "algorithm_config": session.algorithm.options(),
                "providers": current_providers(config.game, config.algorithm), **extra})
    return session


def current_providers(game: str, algorithm: str) -> dict[str, Any]:
    """Which plugin and distribution provide ``game`` and ``algorithm`` now (JSON)."""
    registry = get_registry()
    providers = {"game": registry.provider("game", game),
                 "algorithm": registry.provider("algorithm", algorithm)}
    return {kind: p.to_json() for kind, p in providers.items() if p is not None}


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value
