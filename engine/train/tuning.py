"""Process settings for training and evaluation: torch threads and glibc's malloc.

The library never changes them behind a caller's back: the CLI commands and the benchmarks
call :func:`tune_process` before they train or evaluate.

* Threads: a meta-iteration is many small ops, which extra CPU threads slow down under load
  (``docs/performance.md``, "Threads"); :func:`set_cpu_threads` uses one torch thread on CPU
  unless ``GAMEADAPT_TORCH_THREADS`` says otherwise.
* Memory: by default glibc serves allocations above a (dynamic) threshold with ``mmap`` and
  gives them back with ``munmap`` as soon as they are freed, so the large temporary tensors of
  a meta-iteration are page-faulted in afresh every time (``docs/performance.md``, "malloc").
  :func:`tune_malloc` raises both thresholds with ``mallopt``; it is a no-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

import torch

from ..errors import GameadaptError
from ..learn.policy import resolve_device
from ..limits import MAX_TORCH_THREADS

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


THREADS_ENV = "GAMEADAPT_TORCH_THREADS"


def cpu_threads() -> int:
    """The torch threads for CPU jobs: ``GAMEADAPT_TORCH_THREADS`` (an integer from 1 to
    MAX_TORCH_THREADS; one line otherwise), 1 when unset."""
    text = os.environ.get(THREADS_ENV, "1").strip() or "1"
    if text.isdigit() and 1 <= int(text) <= MAX_TORCH_THREADS:
        return int(text)
    raise GameadaptError(f"invalid {THREADS_ENV} {text!r}: must be an integer from 1 to "
                         f"{MAX_TORCH_THREADS}")


def set_cpu_threads(device: Any) -> None:
    """Use one torch thread on CPU (``GAMEADAPT_TORCH_THREADS`` overrides)."""
    threads = cpu_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(threads)


def tune_process(device: Any) -> None:
    """Both settings, for a job on ``device`` (``"auto"`` picks CUDA when present)."""
    tune_malloc()
    set_cpu_threads(resolve_device(str(device)))
