"""Plugin loading and lookup: the pluggy host.

Built-in plugins (``DEFAULT_PLUGINS``) and third-party plugins (entry-point group
``gameadapt``) go through the same hooks. Plugins are loaded lazily, once, by
:func:`get_registry`, in two phases: every plugin is imported and asked for its games and
algorithms, then the ids are resolved, so the outcome never depends on load order.

What is reported per plugin (:attr:`Registry.plugins`, ``gameadapt plugins list``):

- *errors* skip the plugin as a whole: it failed to import or to register with pluggy, a
  hook raised (named with the file:line it raised at), it registered something that is not
  a spec or one id twice; or its entry point sits in a near miss of the ``gameadapt`` group
  and is never loaded;
- *problems* leave the plugin loaded but say what is wrong: a hook implementation that
  matches no hook (pluggy's ``check_pending``), a function named like a hook but not marked
  with ``@gameadapt.hookimpl``, or an id claim that was refused.

Duplicate ids: a third-party claim on a built-in id is refused (the built-in keeps it);
an id claimed by several third-party plugins is *contested*: every claimant is told who the
others are and the id is unavailable until the user uninstalls one or leaves one out with
``GAMEADAPT_LOAD_PLUGINS``. Every claimant's other ids keep working.

``GAMEADAPT_LOAD_PLUGINS`` restricts third-party loading: unset loads every installed
plugin, an empty string loads none, ``a,b`` loads only the plugins (entry-point or
distribution names) ``a`` and ``b``. Built-ins are always loaded. With ``GAMEADAPT_DEBUG=1``
the full traceback of every failing plugin is printed to stderr when the plugins load.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import re
import signal
import sys
import sysconfig
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pluggy

from .. import PROJECT_NAME, __version__
from ..algorithm import AlgorithmSpec
from ..errors import (
    GameadaptError,
    PluginError,
    UnknownIdError,
    debug_enabled,
    exception_line,
    note,
    warn,
)
from ..game import GameSpec
from . import hookspecs

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = PROJECT_NAME
LOAD_PLUGINS_ENV = "GAMEADAPT_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = PROJECT_NAME
DEFAULT_PLUGINS: tuple[str, ...] = (
    "gameadapt.games.gridnav",
    "gameadapt.games.pointnav",
    "gameadapt.games.cartpole",
    "gameadapt.games.duel",
    "gameadapt.plugins.maml",
    "gameadapt.plugins.reptile",
    "gameadapt.plugins.rl2",
    "gameadapt.plugins.context",
    "gameadapt.plugins.baselines",
)
HOOK_NAMES = ("register_games", "register_algorithms", "register_commands")
KINDS = ("game", "algorithm")
HOOK_OF_KIND = {"game": "register_games", "algorithm": "register_algorithms"}
SPEC_OF_KIND: dict[str, type] = {"game": GameSpec, "algorithm": AlgorithmSpec}
NEAR_MISS_DISTANCE = 2  # names this close to a hook or to the group are reported as typos
SPEC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}")  # gridnav, CartPole-v1, ALE/Pong-v5
SPEC_ID_RULE = ("1 to 100 letters, digits and _ . : / - , starting with a letter or digit "
                "(e.g. gridnav, CartPole-v1)")
GAME_CALLABLES = ("make_env", "make_batched", "make_parallel_env", "opponent", "reference")
REQUIRED_CALLABLES = {"game": ("make_env",), "algorithm": ("make",)}


@dataclass(frozen=True)
class Provider:
    """Which plugin, from which installed distribution, provides a game or an algorithm."""

    plugin: str
    distribution: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {"plugin": self.plugin, "distribution": self.distribution, "version": self.version}

    def describe(self) -> str:
        return f"plugin {self.plugin!r} of {self.distribution} {self.version}"


@dataclass
class PluginInfo:
    """One plugin as the host saw it: what it provides and what went wrong.

    ``errors`` mean the plugin was skipped as a whole; ``problems`` mean it is loaded but
    something it declares does not work (see the module docstring).
    """

    name: str
    version: str
    builtin: bool
    module: str
    distribution: str = ""
    hooks: list[str] = field(default_factory=list)
    games: list[str] = field(default_factory=list)
    algorithms: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    traceback: str | None = None

    @property
    def loaded(self) -> bool:
        """True unless the plugin was skipped as a whole."""
        return not self.errors

    @property
    def ok(self) -> bool:
        """True when the plugin loaded and nothing is wrong with it."""
        return not self.errors and not self.problems

    @property
    def status(self) -> str:
        """``ok``, or every error and problem, separated by ``; ``."""
        return "; ".join(self.errors + self.problems) or "ok"

    def provider(self) -> Provider:
        return Provider(self.name, self.distribution, self.version)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "module": self.module,
            "hooks": self.hooks,
            "games": self.games,
            "algorithms": self.algorithms,
            "status": self.status,
            "errors": self.errors,
            "problems": self.problems,
        }


@dataclass
class _Claim:
    kind: str
    spec: Any
    info: PluginInfo


class Registry:
    """Loaded plugins, and the games and algorithms they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.games: dict[str, GameSpec] = {}
        self.algorithms: dict[str, AlgorithmSpec] = {}
        self.contested: dict[tuple[str, str], list[PluginInfo]] = {}
        self._owner: dict[tuple[str, str], PluginInfo] = {}
        self._claims: list[_Claim] = []
        self._ctrl_c: CtrlCWatch | None = None
        self.refused_commands: list[str] = []  # warning lines the CLI prints on every command

    # -- loading -------------------------------------------------------------------------
    def load(self, builtins: tuple[str, ...] = DEFAULT_PLUGINS) -> Registry:
        """Import built-in and allowed third-party plugins, then resolve their ids.

        While they load, a SIGINT handler records a real Ctrl-C (:class:`CtrlCWatch`): a
        ``KeyboardInterrupt`` then stops the host; any other ``BaseException`` a plugin
        raises only marks that plugin broken.
        """
        with CtrlCWatch() as self._ctrl_c:
            self._load_plugins(builtins)
        return self

    def _load_plugins(self, builtins: tuple[str, ...]) -> None:
        for module_name in builtins:
            info = PluginInfo(module_name.rsplit(".", 1)[-1], __version__, True, module_name,
                              BUILTIN_DISTRIBUTION)
            self._add(info, functools.partial(importlib.import_module, module_name))
        allowed = _allowed_plugins()
        for ep in _entry_points(ENTRY_POINT_GROUP):
            if _is_allowed(ep, allowed):
                self._add(_entry_point_info(ep), ep.load)
        for group in _near_miss_groups():
            for ep in _entry_points(group):
                if _is_allowed(ep, allowed):
                    self._report_misplaced(ep, group)
        self._resolve_claims()
        if debug_enabled():
            for info in self.plugins.values():
                if info.traceback:
                    print(f"plugin {info.name}: {info.status}\n{info.traceback}", file=sys.stderr)

    def _add(self, info: PluginInfo, load_module: Callable[[], Any]) -> None:
        if not self._keep(info):
            return
        try:
            module = load_module()
        except BaseException as exc:  # noqa: BLE001 - a broken plugin must not stop the host
            self._isolate(info, f"import failed: {describe_failure(exc)}", exc)
            return
        try:
            self.pm.register(module, name=info.name)
        except BaseException as exc:  # noqa: BLE001
            self._isolate(info, f"registration failed: {exception_line(exc)}", exc)
            return
        info.hooks = sorted(name for name in HOOK_NAMES if self._implements(info.name, name))
        info.problems.extend(self._unmatched_hooks(info.name))
        info.problems.extend(_unmarked_hook_functions(module))
        claims: list[_Claim] = []
        for kind in KINDS:
            hook_name = HOOK_OF_KIND[kind]
            try:
                self._call(info.name, hook_name, register=_collector(claims, kind, info))
            except BaseException as exc:  # noqa: BLE001
                self._isolate(info, f"{hook_name} raised {describe_failure(exc)}", exc)
                self.pm.unregister(name=info.name)
                return
        twice = _first_repeated([(c.kind, c.spec.id) for c in claims])
        if twice is not None:
            info.errors.append(f"{twice[0]} id {twice[1]!r} registered twice by the same plugin")
            self.pm.unregister(name=info.name)
            return
        self._claims.extend(claims)

    def _keep(self, info: PluginInfo) -> bool:
        """Record ``info``; False (reported) when its name is already taken."""
        if info.name in self.plugins:
            info.errors.append(f"plugin name {info.name!r} is already used by "
                               f"{self.plugins[info.name].module}")
            self.plugins[f"{info.name} ({info.module})"] = info
            return False
        self.plugins[info.name] = info
        return True

    def _fail(self, info: PluginInfo, message: str, exc: BaseException) -> None:
        info.errors.append(message)
        info.traceback = "".join(traceback.format_exception(exc))

    def _isolate(self, info: PluginInfo, message: str, exc: BaseException) -> None:
        """Mark the plugin broken, unless ``exc`` is the user's real Ctrl-C (re-raised)."""
        watch = self._ctrl_c
        if isinstance(exc, KeyboardInterrupt) and watch is not None and watch.seen:
            raise exc
        self._fail(info, message, exc)

    def _report_misplaced(self, ep: EntryPoint, group: str) -> None:
        info = _entry_point_info(ep)
        if self._keep(info):
            info.errors.append(f"entry point {ep.name!r} is declared in the group {group!r}, "
                               f"not {ENTRY_POINT_GROUP!r}, so it is never loaded (fix "
                               f"[project.entry-points.{ENTRY_POINT_GROUP}] in its "
                               f"pyproject.toml)")

    def _implements(self, plugin_name: str, hook_name: str) -> bool:
        caller = getattr(self.pm.hook, hook_name)
        return any(impl.plugin_name == plugin_name for impl in caller.get_hookimpls())

    def _unmatched_hooks(self, plugin_name: str) -> Iterator[str]:
        """Marked implementations with no hook of that name (pluggy's ``check_pending``)."""
        for hook_name, caller in list(vars(self.pm.hook).items()):
            if hook_name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin_name == plugin_name and not impl.optionalhook:
                    yield (f"hook implementation {hook_name!r} matches no gameadapt hook"
                           f"{_did_you_mean(hook_name)}, so it is never called")

    def _resolve_claims(self) -> None:
        """Give every id to its one claimant, to the built-in, or to nobody (contested)."""
        by_id: dict[tuple[str, str], list[_Claim]] = {}
        for claim in self._claims:
            by_id.setdefault((claim.kind, claim.spec.id), []).append(claim)
        winners: set[int] = set()
        for (kind, spec_id), claims in by_id.items():
            builtin = [c for c in claims if c.info.builtin]
            if len(claims) == 1 or len(builtin) == 1:
                winner = claims[0] if len(claims) == 1 else builtin[0]
                winners.add(id(winner))
                for claim in claims:
                    if claim is not winner:
                        claim.info.problems.append(
                            f"{kind} id {spec_id!r} is built in (plugin {winner.info.name!r}); "
                            f"this plugin's claim to it is refused")
                continue
            self.contested[(kind, spec_id)] = [c.info for c in claims]
            for claim in claims:
                others = ", ".join(f"{o.info.name!r} ({o.info.distribution})"
                                   for o in claims if o is not claim)
                claim.info.problems.append(
                    f"{kind} id {spec_id!r} is also claimed by plugin {others}: it is "
                    f"unavailable until one is uninstalled or left out with {LOAD_PLUGINS_ENV}")
        for claim in self._claims:  # in registration order, so info.games keeps its order
            if id(claim) in winners:
                table = self.games if claim.kind == "game" else self.algorithms
                table[claim.spec.id] = guarded_spec(claim.kind, claim.spec, claim.info)
                self._owner[(claim.kind, claim.spec.id)] = claim.info
                (claim.info.games if claim.kind == "game" else claim.info.algorithms).append(
                    claim.spec.id)

    def _call(self, plugin_name: str, hook_name: str, **kwargs: Any) -> None:
        """Call one plugin's implementation of a hook (not the others')."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == plugin_name:
                impl.function(**kwargs)

    def add_commands(self, cli: click.Group) -> None:
        """Let every loaded plugin add CLI commands; a failing plugin is reported."""
        for info in list(self.plugins.values()):
            if not info.loaded or "register_commands" not in info.hooks:
                continue
            before = command_tree(cli)
            try:
                self._call(info.name, "register_commands", cli=cli)
            except BaseException as exc:  # noqa: BLE001
                cli.commands.clear()
                _keep_builtin_commands(before, info, quiet=True)
                self._fail(info, f"register_commands raised {describe_failure(exc)}", exc)
                continue
            self.refused_commands.extend(_keep_builtin_commands(before, info))

    # -- lookup --------------------------------------------------------------------------
    def game(self, game_id: str) -> GameSpec:
        """The game registered as ``game_id``, or an :class:`UnknownIdError`."""
        return self._lookup("game", game_id, self.games)

    def algorithm(self, algorithm_id: str) -> AlgorithmSpec:
        """The algorithm registered as ``algorithm_id``, or an :class:`UnknownIdError`."""
        return self._lookup("algorithm", algorithm_id, self.algorithms)

    def _lookup(self, kind: str, spec_id: str, table: dict[str, Any]) -> Any:
        if spec_id in table:
            return table[spec_id]
        claimants = self.contested.get((kind, spec_id))
        if claimants:
            names = " and ".join(f"{c.name!r} ({c.distribution} {c.version})" for c in claimants)
            raise UnknownIdError(f"{kind} id {spec_id!r} is claimed by plugins {names}; "
                                 f"uninstall one (gameadapt plugins uninstall NAME) or load "
                                 f"one with {LOAD_PLUGINS_ENV}=NAME")
        known = ", ".join(sorted(table)) or "none"
        failed = [info.name for info in self.plugins.values() if not info.loaded]
        hint = (f"; plugin(s) {', '.join(failed)} failed to load, see `gameadapt plugins list`"
                if failed else "")
        raise UnknownIdError(f"unknown {kind} {spec_id!r} (installed: {known}){hint}")

    def owner(self, kind: str, spec_id: str) -> str | None:
        """The name of the plugin that registered game or algorithm ``spec_id``."""
        info = self._owner.get((kind, spec_id))
        return info.name if info is not None else None

    def check_providers(self, recorded: Any, needs: dict[str, str], what: str) -> None:
        """Check that ``needs`` (kind -> id) still come from the ``recorded`` distributions.

        A missing or contested id, or one that another distribution provides now, is a
        one-line :class:`PluginError` / :class:`UnknownIdError`; another version of the same
        distribution is one warning line; files made before providers were recorded
        (``recorded`` is None) get one note line.
        """
        if not isinstance(recorded, dict):
            note(f"{what} was made before gameadapt recorded which distributions provide its "
                 f"plugins; using the installed ones")
            return
        for kind, spec_id in needs.items():
            entry = recorded.get(kind)
            if not isinstance(entry, dict):
                continue
            was = f"{entry.get('distribution')} {entry.get('version')}"
            current = self.provider(kind, spec_id)
            if current is None:
                if (kind, spec_id) in self.contested:
                    self._lookup(kind, spec_id, {})
                raise UnknownIdError(f"{what} needs {kind} {spec_id!r} from {was}, which is not "
                                     f"installed (gameadapt plugins install "
                                     f"{entry.get('distribution')})")
            if canonical_name(current.distribution) != \
                    canonical_name(str(entry.get("distribution"))):
                raise PluginError(f"{what} was made with {kind} {spec_id!r} from {was}, but "
                                  f"{current.describe()} provides it now; reinstall "
                                  f"{entry.get('distribution')} or uninstall "
                                  f"{current.distribution}")
            if current.version != entry.get("version"):
                warn(f"{what} was made with {kind} {spec_id!r} from {was}; version "
                     f"{current.version} is installed")

    def provider(self, kind: str, spec_id: str) -> Provider | None:
        """Plugin and distribution that provide game or algorithm ``spec_id`` (None: nobody)."""
        info = self._owner.get((kind, spec_id))
        return info.provider() if info is not None else None


# -- what a plugin's module is checked for -------------------------------------------------
def _unmarked_hook_functions(module: Any) -> Iterator[str]:
    """Functions named like a hook (or within a small edit distance) without the marker."""
    marker = f"{PROJECT_NAME}_impl"
    for name, value in inspect.getmembers(module, inspect.isfunction):
        if hasattr(value, marker):
            continue
        hook = _closest_hook(name)
        if hook is not None:
            what = "the hook" if hook == name else "the hook name"
            yield (f"function {name!r} looks like {what} {hook!r} but is not marked with "
                   f"@gameadapt.hookimpl, so it is never called")


def _closest_hook(name: str) -> str | None:
    distance, hook = min((edit_distance(name, hook), hook) for hook in HOOK_NAMES)
    return hook if distance <= NEAR_MISS_DISTANCE else None


def _did_you_mean(name: str) -> str:
    hook = _closest_hook(name)
    return f" (did you mean {hook!r}?)" if hook is not None else ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def _near_miss_groups() -> list[str]:
    """Installed entry-point groups that look like a typo of ``gameadapt``."""
    def normal(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    target = normal(ENTRY_POINT_GROUP)
    return sorted(group for group in entry_points().groups
                  if group != ENTRY_POINT_GROUP
                  and (normal(group).startswith(target)
                       or edit_distance(normal(group), target) <= NEAR_MISS_DISTANCE))


# -- failures ------------------------------------------------------------------------------
_ENGINE_DIR = str(Path(__file__).resolve().parents[1])  # the gameadapt package
_SKIPPED_DIRS = (_ENGINE_DIR, str(Path(pluggy.__file__).resolve().parent),
                 str(Path(importlib.__file__).resolve().parent))
_STDLIB_DIR = sysconfig.get_paths()["stdlib"]
_SITE_DIRS = (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])


def describe_failure(exc: BaseException) -> str:
    """One line: the exception and the plugin's file:line it was raised from."""
    origin = _origin(exc)
    return exception_line(exc) + (f" (at {origin})" if origin else "")


def _origin(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame that is the plugin's (not the host's or stdlib's)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_short_path(exc.filename)}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not _is_host_frame(frame.filename):
            return f"{_short_path(frame.filename)}:{frame.lineno}"
    return f"{_short_path(frames[-1].filename)}:{frames[-1].lineno}" if frames else None


def _is_host_frame(filename: str) -> bool:
    if filename.startswith("<"):
        return True
    path = str(Path(filename).resolve())
    if path.startswith(_SKIPPED_DIRS):
        return True
    return path.startswith(_STDLIB_DIR) and not path.startswith(_SITE_DIRS)


def _short_path(filename: str) -> str:
    """``filename`` relative to the ``sys.path`` entry it was imported from, if any."""
    path = Path(filename).resolve()
    roots = sorted((Path(p).resolve() for p in sys.path if p), key=lambda p: len(p.parts),
                   reverse=True)
    for root in roots:
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


# -- helpers -------------------------------------------------------------------------------
def canonical_name(name: str) -> str:
    """A distribution name as pip compares them (PEP 503: lower case, runs of -_. as -)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _collector(claims: list[_Claim], kind: str, info: PluginInfo) -> Callable[[Any], None]:
    spec_type = SPEC_OF_KIND[kind]

    def register(spec: Any) -> None:
        if not isinstance(spec, spec_type):
            raise TypeError(f"register() expects a {spec_type.__name__}, got {type(spec).__name__}")
        check_spec(kind, spec)
        claims.append(_Claim(kind, spec, info))

    return register


def check_spec(kind: str, spec: Any) -> None:
    """Raise :class:`PluginError` unless ``spec``'s id has the documented syntax
    (``SPEC_ID``) and its required callables are callable, its optional ones callable or
    None."""
    if not isinstance(spec.id, str) or not SPEC_ID.fullmatch(spec.id):
        raise PluginError(f"{kind} id {spec.id!r} is invalid: an id is {SPEC_ID_RULE}")
    if not isinstance(spec.description, str):
        raise PluginError(f"{kind} {spec.id!r}: description must be a string, not "
                          f"{type(spec.description).__name__}")
    optional = GAME_CALLABLES if kind == "game" else ()
    for name in (*REQUIRED_CALLABLES[kind], *optional):
        value = getattr(spec, name)
        if not callable(value) and (name in REQUIRED_CALLABLES[kind] or value is not None):
            raise PluginError(f"{kind} {spec.id!r}: {name} must be callable, not "
                              f"{type(value).__name__}")


def guarded_spec(kind: str, spec: Any, info: PluginInfo) -> Any:
    """``spec`` with every callable wrapped so that a failure in the plugin's code is one
    :class:`PluginError` line naming the plugin and the game or algorithm (a
    :class:`GameadaptError`, bad input, passes as it is)."""
    names = GAME_CALLABLES if kind == "game" else REQUIRED_CALLABLES[kind]
    wrapped = {name: _guarded(getattr(spec, name), f"{kind} {spec.id!r} of plugin "
                              f"{info.name!r} ({info.distribution}): {name}")
               for name in names if getattr(spec, name) is not None}
    return dataclasses.replace(spec, **wrapped)


def _guarded(function: Callable[..., Any], where: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (GameadaptError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the plugin raises, name the plugin
            raise PluginError(f"{where} raised {describe_failure(exc)}") from exc

    return call


CommandTree = dict[tuple[str, ...], tuple["click.Group", "click.Command"]]


def command_tree(group: click.Group, path: tuple[str, ...] = ()) -> CommandTree:
    """Every command under ``group`` (subcommands of its groups included), by its path,
    with the group that holds it; parents come before their subcommands."""
    tree: CommandTree = {}
    for name, command in group.commands.items():
        tree[path + (name,)] = (group, command)
        subcommands = getattr(command, "commands", None)  # a click.Group (click: annotations only)
        if isinstance(subcommands, dict):
            tree.update(command_tree(cast("click.Group", command), path + (name,)))
    return tree


def _keep_builtin_commands(before: CommandTree, info: PluginInfo, quiet: bool = False
                           ) -> list[str]:
    """Put back every command (or subcommand, e.g. ``games list``) that ``info``'s
    ``register_commands`` replaced or removed (its new commands stay); return one warning
    line for each (none when ``quiet``: the plugin failed and is reported as such)."""
    lines = []
    for path, (group, command) in before.items():
        if group.commands.get(path[-1]) is command:
            continue
        group.commands[path[-1]] = command
        if quiet:
            continue
        problem = (f"register_commands tried to replace the command {' '.join(path)!r}; "
                   f"the existing one is kept")
        info.problems.append(problem)
        lines.append(f"plugin {info.name!r}: {problem}")
    return lines


class CtrlCWatch:
    """A temporary SIGINT handler (main thread only) that records a real Ctrl-C before
    handing it to the previous handler, so a ``KeyboardInterrupt`` a plugin raises itself
    can be told from the user's."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> CtrlCWatch:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler if self._previous is None
                          else self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def _first_repeated(items: list[tuple[str, str]]) -> tuple[str, str] | None:
    seen: set[tuple[str, str]] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _entry_point_info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    return PluginInfo(ep.name, dist.version if dist is not None else "?", False, ep.value,
                      dist.name if dist is not None else "")


def _allowed_plugins() -> set[str] | None:
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _is_allowed(ep: EntryPoint, allowed: set[str] | None) -> bool:
    dist_name = ep.dist.name if ep.dist is not None else ""
    return allowed is None or ep.name in allowed or dist_name in allowed


def _entry_points(group: str) -> list[EntryPoint]:
    return sorted(entry_points(group=group), key=lambda ep: ep.name)


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
