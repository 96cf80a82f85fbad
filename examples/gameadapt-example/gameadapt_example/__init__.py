"""gameadapt-example: a minimal third-party gameadapt plugin.

It adds a native tensor game (``corridor``), a wrapped gymnasium game (``mountaincar``) and
a CLI command (``gameadapt corridor-info``). The hooks live in :mod:`gameadapt_example.plugin`,
which the package's ``gameadapt`` entry point names.
"""
