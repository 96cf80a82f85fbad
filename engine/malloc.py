"""Keep glibc from returning large blocks to the OS after every tensor op.

By default glibc serves allocations above a (dynamic) threshold with ``mmap`` and gives
them back with ``munmap`` as soon as they are freed, so the large temporary tensors of a
meta-iteration are page-faulted in afresh every time: measured on these 2-core machines,
meta-iterations ran 1.15x slower at 20 tasks and 2x at 100 (see docs/performance.md).
:func:`tune_malloc` raises both thresholds with ``mallopt``; it is a no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 30  # 1 GiB: larger blocks still use mmap
DISABLE_ENV = "GAMEADAPT_NO_MALLOC_TUNING"

_tuned = False


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if it took effect."""
    global _tuned
    if _tuned:
        return True
    if os.environ.get(DISABLE_ENV):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1 and \
        mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1
    _tuned = ok
    return ok
