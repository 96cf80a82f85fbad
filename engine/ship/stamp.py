"""Every written graph finalised: the lowest IR version its opsets need, a graph name, and the
manifest's essentials as ONNX ``metadata_props``.

* IR version: the exporters stamp IR 10 whatever the opset, which ONNX Runtime < 1.18
  refuses. :func:`min_ir_version` is the lowest IR version that every ``opset_import`` needs
  (``onnx.helper.find_min_ir_version_for``; a domain onnx does not know, such as
  ``com.microsoft``, needs none beyond the default), at least 8 if the model has local
  functions and 4 if an initializer is no graph input (:func:`min_ir_version`).
* Metadata: under the keys ``gameadapt.<name>`` (:data:`METADATA_KEYS`), each value a JSON
  string: the manifest's essentials (``manifest.graph_essentials``), the file's ``role``
  and the ``manifest`` file's name, so that an engine importing one ``.onnx`` alone keeps the
  spaces and the action scaling. The graph is named ``gameadapt_<role>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
from onnx import helper

from ..errors import GameadaptError
from .formats import (
    ADAPTER_FILE,
    ENCODER_FILE,
    GODOT_FILE,
    INT8_FILE,
    MANIFEST_FILE,
    POLICY_FILE,
    WEIGHTS_POLICY_FILE,
)

METADATA_PREFIX = "gameadapt."
METADATA_KEYS = ("format", "game", "role", "manifest", "observation_space", "action_space",
                 "action_mode", "action_scaling", "state_size", "latent_size")
ROLES = {POLICY_FILE: "policy", INT8_FILE: "policy_int8", WEIGHTS_POLICY_FILE: "policy_weights",
         ADAPTER_FILE: "adapter", ENCODER_FILE: "encoder", GODOT_FILE: "godot"}
FUNCTIONS_MIN_IR = 8  # model-local functions are IR 8
LOOSE_INITIALIZERS_MIN_IR = 4  # before IR 4 every initializer had to be a graph input


def min_ir_version(model: Any) -> int:
    """The lowest IR version every ``opset_import`` domain needs, and the model's structure:
    local functions need 8, initializers that are no graph input 4."""
    needed = helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    inputs = {value.name for value in model.graph.input}
    loose = any(tensor.name not in inputs for tensor in model.graph.initializer)
    return max(int(needed), FUNCTIONS_MIN_IR if len(model.functions) else 0,
               LOOSE_INITIALIZERS_MIN_IR if loose else 0)


def graph_name(file_name: str) -> str:
    """``gameadapt_<role>``, e.g. ``gameadapt_policy``."""
    return f"gameadapt_{ROLES[file_name]}"


def set_metadata(model: Any, values: Mapping[str, Any]) -> None:
    """Replace the ``gameadapt.*`` ``metadata_props`` by ``values`` as JSON strings (other
    keys, e.g. the quantiser's, stay)."""
    unknown = sorted(set(values) - set(METADATA_KEYS))
    if unknown:
        raise GameadaptError(f"undocumented graph metadata keys: {', '.join(unknown)}")
    kept = [prop for prop in model.metadata_props if not prop.key.startswith(METADATA_PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key in METADATA_KEYS:
        if key in values:
            model.metadata_props.add(key=METADATA_PREFIX + key, value=json.dumps(
                values[key], sort_keys=True, allow_nan=False))


def read_metadata(model: Any) -> dict[str, Any]:
    """The ``gameadapt.*`` ``metadata_props`` of ``model``, JSON-decoded, without the prefix."""
    return {prop.key[len(METADATA_PREFIX):]: json.loads(prop.value)
            for prop in model.metadata_props if prop.key.startswith(METADATA_PREFIX)}


def stamp(model: Any, file_name: str, essentials: Mapping[str, Any]) -> Any:
    """Stamp ``model`` (in place) as the file ``file_name``; checked with ``onnx.checker``."""
    model.ir_version = min_ir_version(model)
    model.graph.name = graph_name(file_name)
    set_metadata(model, {**essentials, "role": ROLES[file_name], "manifest": MANIFEST_FILE})
    onnx.checker.check_model(model, full_check=True)
    return model


def stamp_file(path: Path, essentials: Mapping[str, Any]) -> None:
    """:func:`stamp` the ONNX file at ``path`` (its name says its role) and rewrite it."""
    model = stamp(onnx.load(str(path)), path.name, essentials)
    path.write_bytes(model.SerializeToString())
