"""Errors that the CLI turns into one clear line and a non-zero exit code."""


class GameadaptError(Exception):
    """Base class of every error caused by bad input (not by a bug)."""


class VariantError(GameadaptError, ValueError):
    """A variant, a variant parameter or a variant file is invalid."""


class UnknownIdError(GameadaptError, LookupError):
    """An unknown game or algorithm id was asked for."""


class PluginError(GameadaptError):
    """A plugin could not be loaded or registered."""
