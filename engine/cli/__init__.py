"""The ``gameadapt`` command line: thin commands that parse, call the engine's wings, and print.

Bad input never shows a traceback: every :class:`~gameadapt.errors.GameadaptError` and click
usage error is printed as one ``Error: ...`` line on stderr with a non-zero exit code (see
:class:`~gameadapt.cli.group.OneLineErrorGroup`). Importing this package is cheap: commands
that need torch or onnxruntime import them inside the command, so ``gameadapt --help``,
``games``, ``plugins`` and ``play`` never import torch.
"""

from __future__ import annotations

import click

from .. import __version__
from ..host.registry import get_registry
from .games import algorithms, games
from .group import OneLineErrorGroup
from .playground import playground_command
from .plugins import plugins
from .ship import adapt_command, export_command, play_command
from .train import evaluate_command, latents_command, train_command


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gameadapt")
def cli() -> None:
    """Meta-train game agents that adapt to new levels and rules, and ship them as ONNX."""


for command in (plugins, games, algorithms, train_command, evaluate_command, latents_command,
                adapt_command, export_command, play_command, playground_command):
    cli.add_command(command)
get_registry().add_commands(cli)
