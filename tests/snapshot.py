"""SVG snapshot comparison for app screens (pytest-textual-snapshot pins a syrupy that pytest 9 rejects)."""

from __future__ import annotations

import os
from pathlib import Path

SNAPSHOT_DIR = Path(__file__).with_name("snapshots")
UPDATE = os.environ.get("LLMSCOPE_UPDATE_SNAPSHOTS") == "1"


def assert_svg_snapshot(svg: str, name: str) -> None:
    """Compare with tests/snapshots/NAME.svg; LLMSCOPE_UPDATE_SNAPSHOTS=1 rewrites the reference.

    On a mismatch the new rendering is written next to it as NAME.actual.svg, to look at with rsvg-convert.
    """
    expected_path = SNAPSHOT_DIR / f"{name}.svg"
    actual_path = SNAPSHOT_DIR / f"{name}.actual.svg"
    if UPDATE or not expected_path.exists():
        expected_path.write_text(svg, encoding="utf-8")
        actual_path.unlink(missing_ok=True)
        if not UPDATE:
            raise AssertionError(f"no reference snapshot for {name}: wrote {expected_path}; check it and commit it")
        return
    if expected_path.read_text(encoding="utf-8") != svg:
        actual_path.write_text(svg, encoding="utf-8")
        raise AssertionError(f"{name} differs from its snapshot: compare {expected_path} with {actual_path}")
    actual_path.unlink(missing_ok=True)
