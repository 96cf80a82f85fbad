"""Built-in algorithm plugins, registered through the same hooks as third-party algorithms."""
