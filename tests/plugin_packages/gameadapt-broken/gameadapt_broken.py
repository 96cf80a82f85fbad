"""A gameadapt plugin that cannot be imported (for the registry tests)."""

raise ImportError("example failure")
