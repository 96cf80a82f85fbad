"""``python -m gameadapt`` runs the CLI."""

from .cli import cli

cli(prog_name="gameadapt")
