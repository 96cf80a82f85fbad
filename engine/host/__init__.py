"""The plugin host: the hook contract (``hookspecs``) and plugin loading and lookup (``registry``)."""
