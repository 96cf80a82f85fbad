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
ENCODER_FILE = "encoder.onnx"  # a context export's posterior update
GODOT_FILE = "godot.onnx"  # --target godot: policy.onnx with Godot RL Agents' signature
ALL_FILES = (POLICY_FILE, INT8_FILE, WEIGHTS_POLICY_FILE, ADAPTER_FILE, WEIGHTS_FILE,
             ENCODER_FILE, GODOT_FILE, MANIFEST_FILE)

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
LATENT_MODES = ("mean", "sample")  # how a context export's z is made from the posterior
LATENT_INPUT = "z"  # a context policy.onnx's latent task variable
CONTEXT_INPUTS = ("observation", LATENT_INPUT)
SUM_NAMES = ("precision_sum", "weighted_sum")  # the posterior's running sums (encoder.onnx)
ENCODER_INPUTS = ("observation", "action", "reward", "next_observation", *SUM_NAMES)
ENCODER_OUTPUTS = ("precision_sum_out", "weighted_sum_out", "posterior_mean",
                   "posterior_variance")

# The oldest ONNX Runtime each kind of file was verified against by scripts/ort_compat.sh
# (every kind, at opsets ORT_CHECKED_OPSETS; README "Older ONNX Runtimes").
ORT_CHECKED_OPSETS = (15, DEFAULT_OPSET)
OLDEST_ONNXRUNTIME = {POLICY_FILE: "1.15.1", INT8_FILE: "1.15.1", WEIGHTS_POLICY_FILE: "1.15.1",
                      ADAPTER_FILE: "1.15.1", ENCODER_FILE: "1.15.1", GODOT_FILE: "1.15.1"}


def min_onnxruntime(file_name: str, opset: int, current: str) -> str:
    """A file's ``min_onnxruntime``: the version the compatibility check verified this kind
    of file with at this opset, else ``current`` (the one the export verified it with)."""
    if opset in ORT_CHECKED_OPSETS and file_name in OLDEST_ONNXRUNTIME:
        return OLDEST_ONNXRUNTIME[file_name]
    return current
