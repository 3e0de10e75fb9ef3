"""Sampler table: rendered numbers against numpy references, strike-through columns, summary lines, widget state.

Expected values are computed here with plain numpy from the input logits (softmax, temperature, top-k,
top-p by hand); the table's own helpers are never used as the reference.
"""

from __future__ import annotations

import asyncio
import math
import re

import numpy as np
import pytest
from rich.console import Console
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.geometry import Region

from llmscope.panes import SamplerContent
from llmscope.sampler import SamplerConfig, SampleResult, sample
from llmscope.widgets.sampler.model import build_sampler_view
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.sampler.render import SamplerTableRenderable

LOGITS = np.array([4.0, 3.0, 2.5, 2.0, 1.0, 0.0, -1.0, -3.0], dtype=np.float32)
NAMES = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
TEXTS = dict(enumerate(NAMES))
CONFIG = SamplerConfig(temperature=0.8, top_k=6, top_p=0.9, seed=1)
BAR_AND_MARKS = "│◀✗↓█▏▎▍▌▋▊▉"


def softmax(logits: np.ndarray) -> np.ndarray:
    values = np.asarray(logits, dtype=np.float64)
    exps = np.exp(values - values[np.isfinite(values)].max())
    return exps / exps.sum()


def reference_distributions() -> dict[str, np.ndarray]:
    """Raw, after T 0.8, after top-k 6 and after top-p 0.9, worked out directly on LOGITS."""
    raw = softmax(LOGITS)
    scaled = LOGITS.astype(np.float64) / 0.8
    after_t = softmax(scaled)
    kth = np.sort(scaled)[-6]
    after_k = softmax(np.where(scaled >= kth, scaled, -np.inf))
    order = np.argsort(-after_k)
    keep_count = int(np.searchsorted(np.cumsum(after_k[order]), 0.9) + 1)  # smallest prefix reaching 0.9
    keep = np.zeros(LOGITS.size, dtype=bool)
    keep[order[:keep_count]] = True
    after_p = softmax(np.where(keep, np.log(np.where(after_k > 0, after_k, 1e-300)), -np.inf))
    return {"raw": raw, "T": after_t, "top-k": after_k, "top-p": after_p}


def render(renderable: SamplerTableRenderable, width: int) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def parse_percent(cell: str) -> tuple[float, float]:
    """A displayed probability and half a unit of its last digit (the rounding tolerance)."""
    if cell == "0":
        return 0.0, 0.0
    if cell.startswith("<"):
        return 0.0, float(cell[1:-1]) / 100
    if cell.startswith(">"):
        return 1.0, 1.0 - float(cell[1:-1]) / 100
    number = cell.rstrip("%")
    decimals = len(number.partition(".")[2])
    return float(number) / 100, 0.5 * 10 ** (-decimals) / 100 + 1e-9


def row_fields(text: str) -> dict[int, list[str]]:
    """Candidate rows keyed by token id: [rank, token, id, logit, raw p, stage..., final] as displayed."""
    rows: dict[int, list[str]] = {}
    for line in text.splitlines():
        cleaned = line.translate({ord(char): " " for char in BAR_AND_MARKS}).split()
        if len(cleaned) >= 5 and cleaned[0].isdigit() and cleaned[1] in NAMES:
            rows[int(cleaned[2])] = cleaned
    return rows


def test_each_stage_column_shows_the_stage_distribution():
    result = sample(LOGITS, config=CONFIG)
    reference = reference_distributions()
    for name, key in (("temperature", "T"), ("top_k", "top-k"), ("top_p", "top-p")):
        assert np.allclose(result.stage(name).probs, reference[key], atol=1e-6)  # the sampler agrees with numpy

    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8), 160)
    assert re.search(r"raw p\s+│\s+T 0\.8\s+top-k 6\s+top-p 0\.9\s+│\s+final", text)
    rows = row_fields(text)
    assert sorted(rows) == list(range(8))
    removed_by_k, removed_by_p = {6, 7}, {3, 4, 5}
    for token_id, fields in rows.items():
        assert fields[1] == NAMES[token_id]
        assert float(fields[3]) == pytest.approx(float(LOGITS[token_id]), abs=0.005)
        shown = [parse_percent(cell) for cell in fields[4:9]]
        last_before_removal = reference["T"][token_id] if token_id in removed_by_k else reference["top-k"][token_id]
        expected = [
            reference["raw"][token_id],
            reference["T"][token_id],
            reference["T"][token_id] if token_id in removed_by_k else reference["top-k"][token_id],
            last_before_removal if token_id in removed_by_k | removed_by_p else reference["top-p"][token_id],
        ]
        expected.append(expected[-1])  # final p repeats the last stage (struck out numbers repeat the last value held)
        for (value, tolerance), want in zip(shown, expected):
            assert abs(value - want) <= tolerance, (NAMES[token_id], fields, expected)


def _segment_ends(line: list[Segment]) -> list[tuple[int, Segment]]:
    ends, x = [], 0
    for segment in line:
        x += len(segment.text)
        ends.append((x, segment))
    return ends


def test_removed_tokens_are_struck_from_the_removing_stage_onwards():
    result = sample(LOGITS, config=CONFIG)
    renderable = SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8)
    console = Console(width=160, color_system=None)
    lines = console.render_lines(renderable, console.options.update_width(160), pad=False)
    plain = ["".join(segment.text for segment in line) for line in lines]
    header = plain[0]
    labels = ("raw p", "T 0.8", "top-k 6", "top-p 0.9", "final")
    column_end = {label: header.index(label) + len(label) for label in labels}

    def row(name: str) -> list[Segment]:
        return next(line for line, text in zip(lines, plain) if re.match(rf"\s*\d+ {name}\b", text))

    def struck_ends(name: str) -> set[int]:
        return {
            end - len(seg.text) + len(seg.text.rstrip())
            for end, seg in _segment_ends(row(name))
            if seg.style is not None and seg.style.strike and seg.text.strip()
        }

    def cross_position(name: str) -> int:
        return next(end for end, seg in _segment_ends(row(name)) if "✗" in seg.text)

    assert struck_ends("alpha") == set() and struck_ends("gamma") == set()
    assert struck_ends("delta") == {column_end["top-p 0.9"], column_end["final"]}
    assert column_end["top-k 6"] < cross_position("delta") <= column_end["top-p 0.9"]
    assert struck_ends("eta") == {column_end["top-k 6"], column_end["top-p 0.9"], column_end["final"]}
    assert column_end["T 0.8"] < cross_position("eta") <= column_end["top-k 6"]
    assert all("✗" not in seg.text for seg in row("alpha"))


def test_survivors_line_matches_stage_kept_counts():
    result = sample(LOGITS, config=CONFIG)
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS)), 160)
    match = re.search(r"kept ([\d,]+) → T 0\.8: ([\d,]+) → top-k 6: ([\d,]+) → top-p 0\.9: ([\d,]+)", text)
    assert match, text
    shown = [int(group.replace(",", "")) for group in match.groups()]
    reference = reference_distributions()
    independent = [
        LOGITS.size,
        int((reference["T"] > 0).sum()),
        int((reference["top-k"] > 0).sum()),
        int((reference["top-p"] > 0).sum()),
    ]
    assert shown == independent == [8, 8, 6, 3]
    assert shown[1:] == [stage.kept for stage in result.stages if stage.active]
    assert "off penalties · min-p" in text


def test_entropy_line_in_nats_bits_and_effective_vocabulary():
    result = sample(LOGITS, config=CONFIG)
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS)), 160)
    match = re.search(
        r"entropy ([\d.]+) → ([\d.]+) nats = ([\d.]+) → ([\d.]+) bits · effective vocab e\^H "
        r"([\d.]+) → ([\d.]+)",
        text,
    )
    assert match, text
    raw_nats, final_nats, raw_bits, final_bits, raw_eff, final_eff = map(float, match.groups())
    reference = reference_distributions()

    def entropy(p: np.ndarray) -> float:
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    assert raw_nats == pytest.approx(entropy(reference["raw"]), abs=6e-4)
    assert final_nats == pytest.approx(entropy(reference["top-p"]), abs=6e-4)
    assert raw_bits == pytest.approx(raw_nats / math.log(2), abs=1.5e-3)
    assert final_bits == pytest.approx(final_nats / math.log(2), abs=1.5e-3)
    assert raw_eff == pytest.approx(math.exp(entropy(reference["raw"])), abs=0.06)
    assert final_eff == pytest.approx(math.exp(entropy(reference["top-p"])), abs=0.06)


def test_pick_and_draw_line_and_marker():
    result = sample(LOGITS, config=CONFIG)
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8), 160)
    expected_draw = float(np.random.default_rng([1, 0]).random())  # SamplerConfig seed 1, step 0
    assert f"u = {expected_draw:.4f} (seed 1, step 0)" in text
    chosen_name = NAMES[result.token_id]
    assert f"picked {chosen_name} · id {result.token_id}" in text
    marked = [line for line in text.splitlines() if "◀" in line]
    assert len(marked) == 1 and chosen_name in marked[0]


def test_chosen_token_outside_the_top_rows_is_appended_with_its_rank():
    logits = np.linspace(1.0, 0.0, 50, dtype=np.float32)
    names = {i: f"w{i}" for i in range(50)}
    result = next(r for seed in range(200) if (r := sample(logits, config=SamplerConfig(seed=seed))).token_id >= 10)
    expected_rank = int(np.flatnonzero(np.argsort(-logits, kind="stable") == result.token_id)[0]) + 1
    text = render(SamplerTableRenderable(build_sampler_view(result, names), top_n=3), 120)
    marked = next(line for line in text.splitlines() if "◀" in line)
    assert marked.split()[:2] == [str(expected_rank), f"w{result.token_id}"]
    more = re.search(r"\+(\d+) more\s+([\d.]+)%", text)
    assert more and int(more.group(1)) == 50 - 4
    shown_ids = [0, 1, 2, result.token_id]
    assert float(more.group(2)) / 100 == pytest.approx(1 - softmax(logits)[shown_ids].sum(), abs=0.0005)


def test_greedy_removes_all_but_the_argmax_in_the_temperature_column():
    result = sample(LOGITS, config=SamplerConfig(temperature=0))
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8), 120)
    assert "T 0 greedy" in text and "greedy: argmax, no random draw" in text and "u =" not in text
    for line in text.splitlines():
        if re.match(r"\s*\d+ (beta|gamma|theta)\b", line):
            assert "✗" in line
    assert "✗" not in next(line for line in text.splitlines() if re.match(r"\s*1 alpha", line))
    assert "(greedy skips filters)" in text


def test_penalised_token_is_marked_and_its_probability_matches_numpy():
    result = sample(LOGITS, config=SamplerConfig(repetition_penalty=1.5), prompt_ids=[1, 7])
    penalised = LOGITS.astype(np.float64).copy()
    penalised[1] /= 1.5  # positive logit divided
    penalised[7] *= 1.5  # negative logit multiplied
    expected = softmax(penalised)
    rows = row_fields(render(SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8), 120))
    for token_id in range(8):
        value, tolerance = parse_percent(rows[token_id][5])
        assert abs(value - expected[token_id]) <= tolerance
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS), top_n=8), 120)
    beta_line = next(line for line in text.splitlines() if re.match(r"\s*2 beta", line))
    alpha_line = next(line for line in text.splitlines() if re.match(r"\s*1 alpha", line))
    assert "↓" in beta_line and "↓" not in alpha_line


@pytest.mark.parametrize("width", [40, 60, 80])
def test_narrow_widths_fit_and_say_what_is_hidden(width: int):
    config = SamplerConfig(
        temperature=1.3,
        top_k=5,
        top_p=0.95,
        min_p=0.05,
        repetition_penalty=1.2,
        frequency_penalty=0.5,
        presence_penalty=0.3,
        seed=4,
    )
    result = sample(LOGITS, config=config, prompt_ids=[1], generated_ids=[2])
    text = render(SamplerTableRenderable(build_sampler_view(result, TEXTS), max_height=20), width)
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= width for line in lines)
    assert len(lines) <= 20
    assert "◀" in text and f"picked {NAMES[result.token_id]}" in text
    if width == 40:
        assert "hidden:" in text


def test_rows_fill_the_given_height():
    logits = np.linspace(5.0, -5.0, 200, dtype=np.float32)
    result = sample(logits, config=SamplerConfig(temperature=0.7, seed=2))
    texts = {i: f"t{i}" for i in range(200)}
    for height in (14, 30):
        text = render(SamplerTableRenderable(build_sampler_view(result, texts), max_height=height), 120)
        assert len(text.splitlines()) == height


# ------------------------------------------------------------------------------------------------ widget


class TableApp(App[None]):
    """Just the sampler table, recording the messages it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.picked: list[SamplerTable.TokenPicked] = []

    def compose(self) -> ComposeResult:
        yield SamplerTable()

    def on_sampler_table_token_picked(self, message: SamplerTable.TokenPicked) -> None:
        self.picked.append(message)


def _screen_text(table: SamplerTable) -> str:
    strips = table.render_lines(Region(0, 0, *table.outer_size))
    return "\n".join(strip.text for strip in strips)


def test_widget_shows_waiting_then_data_then_unavailable_reason():
    result: SampleResult = sample(LOGITS, config=CONFIG)

    async def run() -> None:
        app = TableApp()
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.query_one(SamplerTable)
            await pilot.pause()
            assert "No step yet" in _screen_text(table)
            table.content = SamplerContent(result, TEXTS)
            await pilot.pause()
            shown = _screen_text(table)
            assert "picked" in shown and "◀" in shown and table.result is result
            assert table.unavailable_reason is None
            table.show_unavailable("This replay has no logits for step 3.")
            await pilot.pause()
            assert "This replay has no logits for step 3." in _screen_text(table)
            assert table.result is None

    asyncio.run(run())


def test_cursor_and_enter_post_token_picked():
    result = sample(LOGITS, config=CONFIG)

    async def run() -> None:
        app = TableApp()
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.query_one(SamplerTable)
            table.content = SamplerContent(result, TEXTS)
            table.focus()
            await pilot.press("down", "down", "enter")
            await pilot.pause()
            assert [message.token_id for message in app.picked] == [2]
            assert app.picked[0].text == "gamma"
            await pilot.press("home", "up", "enter")
            await pilot.pause()
            assert [message.token_id for message in app.picked] == [2, 0]

    asyncio.run(run())


def test_help_text_exists():
    assert len(SamplerTable.HELP.split(". ")) >= 4
