"""Built-in game plugins, registered through the same hooks as third-party games."""
