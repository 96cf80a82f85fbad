"""Plugin loading and lookup: the pluggy host.

Built-in plugins (``DEFAULT_PLUGINS``) and third-party plugins (entry-point group
``gameadapt``) go through the same hooks. Plugins are loaded lazily, once, by
:func:`get_registry`. A plugin that fails to import, raises inside a hook, or registers an id
that another plugin owns is skipped as a whole and reported in :attr:`Registry.plugins`;
everything else keeps working.

``GAMEADAPT_LOAD_PLUGINS`` restricts third-party loading: unset loads every installed
plugin, an empty string loads none, ``a,b`` loads only the plugins (entry-point or
distribution names) ``a`` and ``b``. Built-ins are always loaded.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import PROJECT_NAME, __version__, hookspecs
from .algorithm import AlgorithmSpec
from .errors import UnknownIdError
from .game import GameSpec

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_PLUGINS_ENV = "GAMEADAPT_LOAD_PLUGINS"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "gameadapt.games.gridnav",
    "gameadapt.games.pointnav",
    "gameadapt.games.cartpole",
    "gameadapt.games.duel",
    "gameadapt.plugins.maml",
    "gameadapt.plugins.reptile",
    "gameadapt.plugins.baselines",
)
HOOK_NAMES = ("register_games", "register_algorithms", "register_commands")


@dataclass
class PluginInfo:
    """One plugin as the host saw it: what it provides and what went wrong."""

    name: str
    version: str
    builtin: bool
    module: str
    hooks: list[str] = field(default_factory=list)
    games: list[str] = field(default_factory=list)
    algorithms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "hooks": self.hooks,
            "games": self.games,
            "algorithms": self.algorithms,
            "errors": self.errors,
        }


class Registry:
    """Loaded plugins, and the games and algorithms they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.games: dict[str, GameSpec] = {}
        self.algorithms: dict[str, AlgorithmSpec] = {}
        self._owner: dict[tuple[str, str], str] = {}

    # -- loading -------------------------------------------------------------------------
    def load(self, builtins: tuple[str, ...] = DEFAULT_PLUGINS) -> Registry:
        """Import and register built-in and allowed third-party plugins."""
        for module_name in builtins:
            info = PluginInfo(module_name.rsplit(".", 1)[-1], __version__, True, module_name)
            self._add(info, lambda name=module_name: importlib.import_module(name))
        allowed = _allowed_plugins()
        for ep in _entry_points():
            dist_name = ep.dist.name if ep.dist is not None else ""
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                continue
            version = ep.dist.version if ep.dist is not None else "?"
            info = PluginInfo(ep.name, version, False, ep.value)
            self._add(info, ep.load)
        return self

    def _add(self, info: PluginInfo, load_module: Any) -> None:
        if info.name in self.plugins:
            info.errors.append(f"plugin name {info.name!r} is already used by "
                               f"{self.plugins[info.name].module}")
            self.plugins[f"{info.name} ({info.module})"] = info
            return
        self.plugins[info.name] = info
        try:
            module = load_module()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must not stop the host
            info.errors.append(f"import failed: {_describe(exc)}")
            return
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:  # noqa: BLE001
            info.errors.append(f"registration failed: {_describe(exc)}")
            return
        info.hooks = sorted(impl_name for impl_name in HOOK_NAMES
                            if callable(getattr(module, impl_name, None))
                            and any(h.plugin_name == info.name
                                    for h in getattr(self.pm.hook, impl_name).get_hookimpls()))
        games: list[GameSpec] = []
        algorithms: list[AlgorithmSpec] = []
        try:
            self._call(info.name, "register_games", register=_collector(games, GameSpec))
            self._call(info.name, "register_algorithms",
                       register=_collector(algorithms, AlgorithmSpec))
            for kind, specs in (("game", games), ("algorithm", algorithms)):
                _check_unique(kind, [spec.id for spec in specs])
                for spec in specs:
                    owner = self._owner.get((kind, spec.id))
                    if owner is not None:
                        raise ValueError(f"{kind} id {spec.id!r} is already registered by "
                                         f"plugin {owner!r}, so plugin {info.name!r} was skipped")
        except Exception as exc:  # noqa: BLE001
            info.errors.append(_describe(exc))
            self.pm.unregister(name=info.name)
            return
        for spec in games:
            self.games[spec.id] = spec
            self._owner[("game", spec.id)] = info.name
            info.games.append(spec.id)
        for spec in algorithms:
            self.algorithms[spec.id] = spec
            self._owner[("algorithm", spec.id)] = info.name
            info.algorithms.append(spec.id)

    def _call(self, plugin_name: str, hook_name: str, **kwargs: Any) -> None:
        """Call one plugin's implementation of a hook (not the others')."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == plugin_name:
                impl.function(**kwargs)

    def add_commands(self, cli: click.Group) -> None:
        """Let every healthy plugin add CLI commands; a failing plugin is reported."""
        for info in list(self.plugins.values()):
            if not info.ok or "register_commands" not in info.hooks:
                continue
            before = dict(cli.commands)
            try:
                self._call(info.name, "register_commands", cli=cli)
            except Exception as exc:  # noqa: BLE001
                cli.commands.clear()
                cli.commands.update(before)
                info.errors.append(f"register_commands: {_describe(exc)}")

    # -- lookup --------------------------------------------------------------------------
    def game(self, game_id: str) -> GameSpec:
        """The game registered as ``game_id``, or an :class:`UnknownIdError`."""
        try:
            return self.games[game_id]
        except KeyError:
            known = ", ".join(sorted(self.games)) or "none"
            raise UnknownIdError(f"unknown game {game_id!r} (installed: {known})") from None

    def algorithm(self, algorithm_id: str) -> AlgorithmSpec:
        """The algorithm registered as ``algorithm_id``, or an :class:`UnknownIdError`."""
        try:
            return self.algorithms[algorithm_id]
        except KeyError:
            known = ", ".join(sorted(self.algorithms)) or "none"
            raise UnknownIdError(f"unknown algorithm {algorithm_id!r} (installed: {known})") from None

    def owner(self, kind: str, spec_id: str) -> str | None:
        """The plugin that registered game or algorithm ``spec_id``."""
        return self._owner.get((kind, spec_id))


def _collector(target: list, spec_type: type) -> Any:
    def register(spec: Any) -> None:
        if not isinstance(spec, spec_type):
            raise TypeError(f"register() expects a {spec_type.__name__}, got {type(spec).__name__}")
        target.append(spec)

    return register


def _check_unique(kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for spec_id in ids:
        if spec_id in seen:
            raise ValueError(f"{kind} id {spec_id!r} registered twice by the same plugin")
        seen.add(spec_id)


def _allowed_plugins() -> set[str] | None:
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _entry_points() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loading plugins on first use."""
    global _registry
    if _registry is None:
        _registry = Registry().load()
    return _registry


def reset_registry() -> None:
    """Forget the loaded plugins (tests use this after changing the environment)."""
    global _registry
    _registry = None
