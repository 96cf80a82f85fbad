"""The operators Unity Sentis imports, and the check ``--target sentis`` runs on every graph.

The list, ``data/sentis_operators.txt``, is the op types that every Sentis / Inference Engine
importer from 1.3 to 2.4 converts (its header names the sources). :func:`check_graphs` reads
every node of every ``.onnx`` file of an export (subgraphs and local functions included) and
stops the export with one line naming the first file and its unsupported op types.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import onnx

from ..errors import GameadaptError

SENTIS_MAX_OPSET = 15
SENTIS_DOMAINS = ("", "ai.onnx")  # the default domain only: no com.microsoft operators


@functools.cache
def sentis_operators() -> frozenset[str]:
    """The op types of ``data/sentis_operators.txt`` (comments and blank lines skipped)."""
    text = resources.files(__package__).joinpath("data/sentis_operators.txt").read_text("utf-8")
    return frozenset(line.strip() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def _nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _nodes(subgraph)


def unsupported_operators(model: Any) -> list[str]:
    """The op types of ``model`` that Sentis cannot import, sorted (``domain::Op`` outside
    the default domain)."""
    local = {function.name for function in model.functions}
    nodes = [*_nodes(model.graph), *(node for f in model.functions for node in f.node)]
    missing = set()
    for node in nodes:
        if node.op_type in local:
            continue
        if node.domain not in SENTIS_DOMAINS:
            missing.add(f"{node.domain}::{node.op_type}")
        elif node.op_type not in sentis_operators():
            missing.add(node.op_type)
    return sorted(missing)


def check_graphs(folder: Path, names: Sequence[str]) -> dict[str, Any]:
    """Check the ``.onnx`` files ``names`` of ``folder``; the manifest's ``sentis`` entry."""
    operators: set[str] = set()
    for name in names:
        if not name.endswith(".onnx"):
            continue
        model = onnx.load(str(folder / name))
        opset = max((entry.version for entry in model.opset_import
                     if entry.domain in SENTIS_DOMAINS), default=0)
        if opset > SENTIS_MAX_OPSET:
            raise GameadaptError(f"--target sentis: {name} is opset {opset}; Sentis reads up "
                                 f"to {SENTIS_MAX_OPSET}")
        missing = unsupported_operators(model)
        if missing:
            raise GameadaptError(f"--target sentis: {name} uses {', '.join(missing)}, which "
                                 f"Unity Sentis cannot import; nothing was written")
        operators.update(node.op_type for node in _nodes(model.graph))
    return {"operators": sorted(operators), "checked_against": "data/sentis_operators.txt "
            "(the op types of every Sentis importer 1.3-2.4)", "passed": True}
