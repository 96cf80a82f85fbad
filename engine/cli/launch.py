"""``gameadapt train --nproc N``: the job of ``torchrun --standalone --nproc-per-node N``, on
this machine, quietly.

It starts ``N`` copies of the same ``gameadapt train`` command with torchrun's environment
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` 127.0.0.1 and
a free ``MASTER_PORT``) and waits. When one process fails, the others are stopped (SIGTERM)
and the job exits with the first failure's code, so a failed job prints at most the one line
of each rank that had something to say (torchrun adds its own summary; this launcher does
not). Ctrl-C reaches every process (one terminal process group); each stops at the same
iteration (``train.distributed.agree_stop``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from ..limits import MAX_PROCESSES

POLL_SECONDS = 0.1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def without_nproc(args: Sequence[str]) -> list[str]:
    """``args`` with ``--nproc N`` / ``--nproc=N`` removed."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


def launch(nproc: int, args: Sequence[str]) -> int:
    """Run ``gameadapt ARGS`` (without ``--nproc``) on ``nproc`` processes; the exit code."""
    assert 1 <= nproc <= MAX_PROCESSES
    port = str(free_port())
    command = [sys.executable, "-m", "gameadapt", *without_nproc(args)]
    workers = []
    for rank in range(nproc):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
               "GROUP_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        workers.append(subprocess.Popen(command, env=env))
    return _wait(workers)


def _wait(workers: list[subprocess.Popen[bytes]]) -> int:
    """Wait for every worker; at the first failure stop the rest and return its code."""
    try:
        while True:
            codes = [worker.poll() for worker in workers]
            failed = [code for code in codes if code not in (None, 0)]
            if failed:
                _stop(workers)
                code = failed[0]
                return code if code > 0 else 128 - code  # killed by a signal: 128 + signal
            if all(code == 0 for code in codes):
                return 0
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:  # the workers got the same Ctrl-C and save their iteration
        return max(worker.wait() for worker in workers)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
