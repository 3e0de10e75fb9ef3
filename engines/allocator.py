"""Freed capture buffers go back to the operating system, so a long run's resident memory follows what it keeps.

A step's attention row (and the forward's temporaries) grow with the position. glibc raises its mmap threshold
to the size of each large block freed, so the next, slightly larger, blocks come from the heap, where freed
rows leave holes no later row fits: resident memory then grows with steps² even after llmscope drops old rows
(AttentionBudget). Fixing the threshold keeps every block above it in its own mapping, unmapped on free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3
"""mallopt parameter number (glibc malloc.h)."""
MMAP_THRESHOLD_BYTES = 64 * 2**10
"""Blocks from 64 KiB up (a SmolLM2 attention row past ~60 positions, a 16k-vocabulary logits vector) are mapped."""

_applied = False


def return_freed_blocks() -> bool:
    """Fix glibc's mmap threshold once per process (a no-op elsewhere); True when it was applied."""
    global _applied
    if _applied or not sys.platform.startswith("linux"):
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl and other libcs have no mallopt: keep their default
        _applied = False
    return _applied
