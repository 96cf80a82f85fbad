"""The domains of every number and file the engine takes in, in one place.

Every command checks its inputs against these before any work starts (one ``Error:`` line
otherwise); ``docs/architecture.md`` ("Guarantees") lists them for users.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from .errors import GameadaptError

SEED_MIN = 0
SEED_MAX = 2**32 - 1  # every seed: train, play, evaluate, adapt, games sample/play, configs
MAX_NESTING = 32  # JSON/TOML nesting deeper than this is refused (config, variant, manifest)
MAX_TEXT_BYTES = 16 * 2**20  # config, variant and manifest files larger than this are refused


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as a seed in [SEED_MIN, SEED_MAX] (a one-line error otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not SEED_MIN <= value <= SEED_MAX:
        raise GameadaptError(f"invalid {name} {value!r}: must be an integer from {SEED_MIN} to "
                             f"{SEED_MAX}")
    return value


# -- upper bounds of counts that are not memory (memory: gameadapt.train.memory) -------------
MAX_SAMPLE_VARIANTS = 100_000  # games sample -n
MAX_PREVIEW_STEPS = 100_000  # games play --steps
MAX_EPISODES = 100_000  # play --episodes, adapt --episodes/--eval-episodes, evaluate --episodes
MAX_INNER_STEPS = 100  # evaluate --steps, adapt --steps, -o inner_steps
MAX_TASKS = 100_000  # evaluate --tasks, latents --tasks
MAX_TRIALS = 10_000  # evaluate --trials
MAX_BUDGET = 1000  # evaluate --budgets (episodes of experience; = train.evaluate.MAX_BUDGET)
MAX_LIST_ITEMS = 100  # entries of a comma-separated list option (--seeds, --steps, --budgets)
MAX_ITERATIONS = 10_000_000  # train --iterations, --checkpoint-every
MAX_LAYER_WIDTH = 4096  # every entry of -o hidden_sizes / encoder_sizes, rl2's hidden_size
MAX_LAYERS = 16  # entries of -o hidden_sizes / encoder_sizes
MAX_TORCH_THREADS = 1024  # GAMEADAPT_TORCH_THREADS
MAX_PROCESSES = 1024  # train --nproc
MEMORY_SHARE = 0.5  # a training iteration or an evaluation may use this share of MemAvailable
MEMORY_FLAG = "--ignore-memory-limit"

ignore_memory_limit: ContextVar[bool] = ContextVar("ignore_memory_limit", default=False)
"""True while a command runs with ``--ignore-memory-limit`` (set by the CLI, read by
:mod:`gameadapt.train.memory`)."""


def check_count(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an integer in [low, high] (a one-line error naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GameadaptError(f"invalid {name} {value!r}: must be an integer from {low} to {high}")
    return value


def check_layer_sizes(sizes: Any) -> bool:
    """True when ``sizes`` lists 1 to MAX_LAYERS widths, each from 1 to MAX_LAYER_WIDTH."""
    return (isinstance(sizes, tuple) and 1 <= len(sizes) <= MAX_LAYERS
            and all(isinstance(s, int) and 1 <= s <= MAX_LAYER_WIDTH for s in sizes))


LAYER_SIZES_RULE = (f"must list 1 to {MAX_LAYERS} layer widths, each from 1 to "
                    f"{MAX_LAYER_WIDTH}")
