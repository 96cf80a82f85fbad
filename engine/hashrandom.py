"""Counter-based random numbers that give identical bits in numpy and in torch.

Games draw per-env, per-step randomness as ``uniform(xp, key, step)`` where ``xp`` is the
``numpy`` or ``torch`` module. A stateless hash (splitmix64 on wrapping int64) means the
batched torch view and the single numpy view of a game draw exactly the same numbers, on
any device, without sharing generator state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MUL1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MUL2 = 0x94D049BB133111EB - (1 << 64)
_MASK24 = (1 << 24) - 1


def _shr(x: Any, bits: int) -> Any:
    """Logical right shift of wrapping int64 values (works for numpy and torch)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix64(x: Any) -> Any:
    """The splitmix64 finaliser on an int64 array / tensor (wrapping arithmetic)."""
    x = x * 1 + _GOLDEN
    x = (x ^ _shr(x, 30)) * _MUL1
    x = (x ^ _shr(x, 27)) * _MUL2
    return x ^ _shr(x, 31)


def stream_keys(seed: int, index: Any) -> Any:
    """:func:`stream_key` for every element of an int64 array / tensor ``index``, vectorised."""
    return mix64((index * 0 + seed) ^ mix64(index))


def stream_key(seed: int, index: int) -> int:
    """The key of random stream ``index`` under ``seed`` (a Python int in int64 range)."""
    with np.errstate(over="ignore"):
        key = mix64(np.asarray([seed], dtype=np.int64) ^ mix64(np.asarray([index], dtype=np.int64)))
    return int(key[0])


def uniform(xp: Any, key: Any, counter: Any) -> Any:
    """Float32 numbers in ``[0, 1)`` (24-bit), one per element of ``key`` (int64), at ``counter``.

    ``xp`` is the numpy or torch module; ``key`` an int64 array/tensor; ``counter`` an int or
    an int64 array/tensor broadcastable with ``key``.
    """
    bits = mix64(key ^ mix64(key * 0 + counter))
    top24 = _shr(bits, 40) & _MASK24
    if xp.__name__ == "torch":
        return top24.to(xp.float32) / float(1 << 24)
    return top24.astype(xp.float32) / xp.float32(1 << 24)


SEED_MASK = 0x7FFF_FFFF_FFFF_FFFF  # non-negative int64: what numpy, torch and gymnasium accept


def derive_seed(seed: int, purpose: int) -> int:
    """An independent non-negative seed for ``purpose`` under ``seed`` (its stream's key).

    The one seed derivation of the engine: per iteration, per round of episodes, per env of a
    Python-loop batched view (the env's global stream index).
    """
    return stream_key(seed, purpose) & SEED_MASK
