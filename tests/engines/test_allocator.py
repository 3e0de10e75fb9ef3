"""engines.allocator fixes glibc's mmap threshold once, so freed capture buffers leave resident memory."""

from __future__ import annotations

import sys

import pytest

from llmscope.engines import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_the_threshold_is_fixed_once_per_process():
    assert allocator.return_freed_blocks() is True
    assert allocator.return_freed_blocks() is True  # idempotent: every model load calls it
