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
import tomllib
from collections.abc import Mapping
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
from ..variants import SPLITS, Split, Variant
from .checkpoint import load_checkpoint
from .runs import RunDir, RunError
from .spacecheck import check_game_views


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

    def validate(self) -> None:
        """Raise a one-line :class:`GameadaptError` for the first invalid value."""
        for name in ("iterations", "meta_batch", "envs_per_task", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise GameadaptError(f"invalid {name.replace('_', '-')} {value!r}: must be an "
                                     f"integer >= 1")
        if self.variant_split not in SPLITS:
            raise GameadaptError(f"invalid variant-split {self.variant_split!r}: "
                                 f"use train or test")
        if not isinstance(self.share_policy, bool):
            raise GameadaptError(f"invalid share-policy {self.share_policy!r}: must be true or "
                                 f"false")
        if not isinstance(self.options, dict):
            raise GameadaptError("algorithm options must be a table of key = value")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML training config: top-level TrainConfig keys plus an ``[options]`` table."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise GameadaptError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GameadaptError(f"config file {path} is not valid TOML: {exc}") from None
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GameadaptError(f"config file {path}: unknown key {unknown[0]!r} "
                             f"(known: {', '.join(sorted(known))})")
    return data


def make_config(values: Mapping[str, Any]) -> TrainConfig:
    """A validated :class:`TrainConfig` from a mapping of its fields."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise GameadaptError(f"unknown training setting {unknown[0]!r}")
    if "game" not in values:
        raise GameadaptError("no game given")
    config = TrainConfig(**values)
    config.validate()
    return config


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


def build_session(config: TrainConfig) -> Session:
    """Resolve the game and algorithm and make a fresh policy and optimiser.

    The game's declared spaces are checked against its views on the first training variant
    (:func:`~gameadapt.train.spacecheck.check_game_views`) before anything is built.
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
    algorithm = algorithm_spec.make(config.options)
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

    The distributions that provided the run's game and algorithm must still provide them
    (another version only warns; see :meth:`Registry.check_providers`).
    """
    config = config or make_config(run.read_config()["train"])
    check_run_providers(run, config)
    session = build_session(config)
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


def check_run_providers(run: RunDir, config: TrainConfig | None = None) -> None:
    """The run's game and algorithm must come from the distributions that made it."""
    saved = run.read_config()
    config = config or make_config(saved["train"])
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
