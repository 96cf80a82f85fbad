"""The check that an export's graphs describe themselves (issue 16, item 3): each ``.onnx``
file of a folder, loaded with onnx, against the folder's ``policy.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from gameadapt.ship import formats
from onnx import helper

ROLES = {"policy.onnx": "policy", "policy.int8.onnx": "policy_int8",
         "policy_weights.onnx": "policy_weights", "adapter.onnx": "adapter",
         "encoder.onnx": "encoder", "godot.onnx": "godot"}
SHARED = ("format", "game", "observation_space", "action_space", "action_mode",
          "action_scaling")


def expected_metadata(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """What ``name``'s ``gameadapt.*`` metadata must hold, read from the manifest."""
    return {**{key: manifest[key] for key in SHARED},
            "state_size": (manifest["recurrent"] or {}).get("state_size"),
            "latent_size": (manifest["context"] or {}).get("latent_size"),
            "role": ROLES[name], "manifest": "policy.json"}


def assert_self_describing(folder: Path) -> list[str]:
    """Every graph's IR version, name, metadata and manifest entry; returns the files."""
    manifest = json.loads((folder / "policy.json").read_text())
    names = sorted(name for name in manifest["files"] if name.endswith(".onnx"))
    assert names
    for name in names:
        data, entry = (folder / name).read_bytes(), manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()  # hashed after stamping
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model, full_check=True)
        lowest = helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
        inputs = {value.name for value in model.graph.input}
        loose = any(tensor.name not in inputs for tensor in model.graph.initializer)
        assert model.ir_version == entry["ir_version"] == max(
            lowest, 8 if model.functions else 0, 4 if loose else 0)
        assert model.graph.name == f"gameadapt_{ROLES[name]}"
        metadata = {prop.key.removeprefix("gameadapt."): json.loads(prop.value)
                    for prop in model.metadata_props if prop.key.startswith("gameadapt.")}
        assert metadata == expected_metadata(manifest, name), name
        assert entry["min_onnxruntime"] == formats.min_onnxruntime(
            name, entry["opset"], manifest["onnxruntime_version"])
    return names
