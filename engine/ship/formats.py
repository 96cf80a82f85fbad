"""The export format: file names, the manifest's format tag, opset limits. Pure Python.

The one home of these constants in the engine (the CLI reads them without importing torch).
The standalone reference loader :mod:`gameadapt.ship.onnxpolicy` keeps its own copy of the
names it reads, so that it can be copied into a game's tools alone; a test keeps both equal.
"""

from __future__ import annotations

FORMAT = "gameadapt-policy/1"
MANIFEST_FILE = "policy.json"
POLICY_FILE = "policy.onnx"
INT8_FILE = "policy.int8.onnx"
WEIGHTS_POLICY_FILE = "policy_weights.onnx"
ADAPTER_FILE = "adapter.onnx"
WEIGHTS_FILE = "weights.bin"
ALL_FILES = (POLICY_FILE, INT8_FILE, WEIGHTS_POLICY_FILE, ADAPTER_FILE, WEIGHTS_FILE,
             MANIFEST_FILE)

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 7, 21
ADAPTER_MIN_OPSET = 15  # the adapter's gradient graph converts down to 15, not below
QUANTIZE_MIN_OPSET = 11  # DynamicQuantizeLinear / MatMulInteger
QUANTIZE_TYPES = ("int8",)

ACTION_MODES = ("greedy", "sampled")  # what policy.onnx's `action` output is
NOISE_INPUT = "noise"  # the uniform(0, 1) numbers a sampled graph takes
NOISE_CLAMP = 1e-7  # noise is clamped to [NOISE_CLAMP, 1 - NOISE_CLAMP] inside the graph
RECURRENT_INPUTS = ("observation", "prev_action", "prev_reward", "episode_start", "state")
STATE_OUTPUT = "state_out"
