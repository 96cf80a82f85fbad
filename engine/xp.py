"""Helpers for game rules written once against an array module ``xp`` (numpy or torch).

Native games pass the ``numpy`` or the ``torch`` module as ``xp`` and use only operations
that give identical results in both; the few spelled differently live here.
"""

from __future__ import annotations

from typing import Any


def cast(xp: Any, x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype`` (``xp.float32``, ``xp.int64``, ...), numpy or torch."""
    return x.to(dtype) if xp.__name__ == "torch" else x.astype(dtype)
