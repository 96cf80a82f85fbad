"""``gameadapt plugins``: list, install and uninstall plugin packages."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import click

from ..errors import GameadaptError, PluginError
from ..host.registry import (
    BUILTIN_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    LOAD_PLUGINS_ENV,
    canonical_name,
    get_registry,
    reset_registry,
)
from ..tables import format_table
from .options import echo_json, json_option


@click.group()
def plugins() -> None:
    """Installed plugins: list, install, uninstall."""


@plugins.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@json_option
def plugins_list(show_all: bool, as_json: bool) -> None:
    """List plugins with their distribution, version, hooks, what they registered and status."""
    infos = [p for p in get_registry().plugins.values() if show_all or not p.builtin]
    if as_json:
        echo_json([p.to_json() for p in infos])
        return
    if not infos:
        click.echo("No third-party plugins installed (use --all to see the built-ins).")
        return
    rows = [(p.name, p.distribution or "-", p.version, "built-in" if p.builtin else "installed",
             p.hooks, p.games + p.algorithms, p.status) for p in infos]
    click.echo(format_table(["name", "distribution", "version", "source", "hooks", "provides",
                             "status"], rows))


@plugins.command("install")
@click.argument("specs", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_install(specs: tuple[str, ...], yes: bool) -> None:
    """Install plugin packages with pip (names, paths or URLs pip understands).

    Then loads the plugins in a fresh process and exits non-zero, naming the reason, unless
    every plugin the installed distributions declare loads cleanly.
    """
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "pip-report.json"
        _run_pip(["install", "--report", str(report), *specs],
                 f"Install {', '.join(specs)} into {sys.executable}?", yes)
        installed = _reported_installs(report)
    reset_registry()
    if not installed:
        click.echo("pip installed nothing new (already installed?)")
        return
    mine = [p for p in _plugins_in_fresh_process()
            if not p["builtin"] and canonical_name(p["distribution"]) in installed]
    for info in mine:
        click.echo(f"plugin {info['name']} ({info['distribution']} {info['version']}): "
                   f"{info['status']}")
    if not mine:
        raise PluginError(f"pip installed {', '.join(sorted(installed))}, but none of it declares "
                          f"a gameadapt plugin (entry-point group 'gameadapt')")
    for info in mine:
        if info["status"] != "ok":
            how = "does not load" if info["errors"] else "loads with problems"
            raise PluginError(f"plugin {info['name']} was installed but {how}: {info['status']}")


def _reported_installs(report: Path) -> set[str]:
    """Canonical names of the distributions a ``pip install --report`` installed."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        return {canonical_name(item["metadata"]["name"]) for item in data.get("install", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _plugins_in_fresh_process() -> list[dict[str, Any]]:
    """``plugins list --all --json`` of a new process (sees what pip just installed)."""
    env = {k: v for k, v in os.environ.items() if k != LOAD_PLUGINS_ENV}
    completed = subprocess.run([sys.executable, "-m", "gameadapt", "plugins", "list", "--all",
                                "--json"], capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise PluginError(f"gameadapt no longer starts after the install: {last}")
    return json.loads(completed.stdout)


@plugins.command("uninstall")
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_uninstall(names: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugins with pip, named by plugin name or distribution name."""
    dists = list(dict.fromkeys(_plugin_distribution(name) for name in names))
    _run_pip(["uninstall", "-y", *dists], f"Uninstall {', '.join(dists)}?", yes)
    importlib.invalidate_caches()
    reset_registry()
    left = [name for name in dists if _is_installed(name)]
    if left:
        raise PluginError(f"pip did not uninstall {', '.join(left)}")
    click.echo(f"uninstalled {', '.join(dists)}")


def _plugin_distribution(name: str) -> str:
    """The installed distribution that provides the plugin called ``name`` (or named so)."""
    wanted = canonical_name(name)
    for info in get_registry().plugins.values():
        if name == info.name or wanted == canonical_name(info.distribution):
            if info.builtin or canonical_name(info.distribution) == BUILTIN_DISTRIBUTION:
                raise PluginError(f"{name!r} is built into gameadapt and cannot be uninstalled "
                                  f"on its own")
            if info.distribution:
                return info.distribution
    if wanted == BUILTIN_DISTRIBUTION:
        raise PluginError("gameadapt itself is not a plugin; uninstall it with pip")
    for ep in entry_points(group=ENTRY_POINT_GROUP):  # also those GAMEADAPT_LOAD_PLUGINS leaves out
        if ep.dist is not None and (ep.name == name or canonical_name(ep.dist.name) == wanted):
            return ep.dist.name
    if _is_installed(name):
        raise PluginError(f"{name!r} is installed but is not a gameadapt plugin; nothing was "
                          f"uninstalled")
    raise PluginError(f"nothing to uninstall: {name!r} is neither an installed plugin nor its "
                      f"distribution (see gameadapt plugins list)")


def _is_installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


def _run_pip(pip_args: list[str], question: str, yes: bool) -> None:
    if not yes:
        click.confirm(question, abort=True)
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *pip_args]
    completed = subprocess.run(command, check=False)  # an argument list, never a shell
    if completed.returncode != 0:
        raise GameadaptError(f"pip {pip_args[0]} failed with exit code {completed.returncode}")
