"""Exported screenshots render in a standard SVG renderer (issue 12): librsvg must not glue tinted tokens together.

Rich draws each style run as its own `<text>`; a token that starts with a space ("␣be") is such a run. The test
renders with rsvg-convert and measures the gap between the letters where the space is: it must be as wide as in
the same words drawn as one run.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from llmscope.tui.svg_export import NBSP, renderer_safe_svg

RSVG = shutil.which("rsvg-convert")


def decode_png(data: bytes) -> tuple[int, int, list[bytearray]]:
    """Width, height and RGBA rows of an 8-bit RGBA, non-interlaced PNG (what rsvg-convert writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, width = 8, b"", 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert (depth, color) == (8, 6), "expected 8-bit RGBA"
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    raw = zlib.decompress(idat)
    stride, rows, previous = width * 4, [], bytearray(width * 4)
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 4] if i >= 4 else 0
            up = previous[i]
            corner = previous[i - 4] if i >= 4 else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(line)
        previous = line
    return width, len(rows), rows


def widest_gap(svg: str, tmp_path: Path, name: str) -> int:
    """The widest run of ink-free pixel columns between the first and last letter of the text line."""
    source, target = tmp_path / f"{name}.svg", tmp_path / f"{name}.png"
    source.write_text(svg, encoding="utf-8")
    subprocess.run([RSVG, "-o", str(target), str(source)], check=True)
    width, height, rows = decode_png(target.read_bytes())
    line = rows[height * 6 // 10 : height * 85 // 100]  # the text line, below the window's title bar
    ink = [any(all(row[x * 4 + c] > 150 for c in range(3)) for row in line) for x in range(4, width - 4)]
    columns = [x for x, inked in enumerate(ink) if inked]
    gaps = [later - earlier - 1 for earlier, later in zip(columns, columns[1:])]
    return max(gaps)


def exported(*runs: tuple[str, str]) -> str:
    console = Console(width=20, record=True, file=open("/dev/null", "w"), force_terminal=True, color_system="truecolor")
    console.print(Text.assemble(*runs))
    return console.export_svg(title="t")


def test_no_text_run_starts_or_ends_with_a_space():
    svg = renderer_safe_svg(exported(("To", "on #600000"), (" be", "on #000060"), (" ,", "on #600000")))
    assert f">{NBSP}" not in svg and f"{NBSP}</text>" not in svg
    assert ">be</text>" in svg and ">,</text>" in svg


@pytest.mark.skipif(RSVG is None, reason="rsvg-convert is not installed (apt-get install librsvg2-bin)")
def test_a_token_starting_with_a_space_keeps_its_space_in_librsvg(tmp_path):
    reference = widest_gap(exported(("To be", "on #000060")), tmp_path, "one-run")
    tinted = exported(("To", "on #600000"), (" be", "on #000060"))
    assert widest_gap(tinted, tmp_path, "raw") < reference / 2  # the bug: the space is lost
    assert abs(widest_gap(renderer_safe_svg(tinted), tmp_path, "fixed") - reference) <= 2
