"""Attention at long context: bins are sums of the array, shares and strongest keys are hand sums and a sort,
the zoom window shows exactly its keys, learned sinks get a column, weightless layers say so, keys work."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from rich.color import Color
from textual.app import App, ComposeResult

from llmscope.attention_stats import bin_sums, row_shares, strongest_keys
from llmscope.panes import AttentionContent
from llmscope.widgets.attention.data import AttentionData
from llmscope.widgets.attention.grid import AttentionGrid
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.attention.summary import SinkSummary, legend_text, status_text
from llmscope.widgets.attention.zoom import AttentionZoom

from .test_attention import causal_attention, labels, render

KEYS = 8192


def long_row_data(*, sink: bool = False, weightless: dict[int, str] | None = None, seed: int = 5) -> AttentionData:
    """A decode step over 8,192 keys: 2 layers × 4 heads, some weight piled on the first keys (a sink)."""
    weights = causal_attention(2, 4, 1, KEYS, seed=seed).astype(np.float64)
    weights[..., :4] += 0.2
    weights /= weights.sum(axis=-1, keepdims=True)
    learned = None
    if sink:
        learned = np.random.default_rng(seed).uniform(0.05, 0.6, (2, 4, 1))
        weights *= 1 - learned[..., None]  # keys then sum to 1 − sink, as gpt-oss's rows do
    return AttentionData(
        weights.astype(np.float32),
        KEYS - 1,
        tuple(labels(KEYS)),
        2,
        7,
        learned_sink=None if learned is None else learned.astype(np.float32),
        weightless=weightless or {},
    )


# ----- pure numbers ----------------------------------------------------------------------------------------


def test_bin_sums_equal_hand_sums_including_a_short_last_bin():
    row = np.random.default_rng(0).random(1000)
    sums = bin_sums(row, 64)  # 15 full bins and one of 40
    assert sums.shape == (16,)
    for j in range(16):
        assert sums[j] == pytest.approx(row[64 * j : 64 * (j + 1)].sum(), rel=1e-12)
    assert sums.sum() == pytest.approx(row.sum())


def test_strongest_keys_equal_a_stable_argsort_of_the_row_even_with_ties():
    rng = np.random.default_rng(1)
    row = rng.random(KEYS).astype(np.float32)
    row[[10, 20, 30]] = 2.0  # a three-way tie at the top: earliest position first
    row[rng.choice(KEYS, 50)] = 1.5
    expected = np.argsort(-row, kind="stable")[:40]
    assert [key for key, _ in strongest_keys(row, 40)] == expected.tolist()
    assert [weight for _, weight in strongest_keys(row, 40)] == row[expected].tolist()
    assert [key for key, _ in strongest_keys(np.zeros(100), 3)] == [0, 1, 2]


def test_row_shares_are_hand_sums_over_the_first_and_the_last_keys():
    row = np.random.default_rng(2).random(300)
    shares = row_shares(row, 199, learned_sink=0.25, first_keys=4, recent_keys=64)
    assert shares.first == pytest.approx(row[:4].sum())
    assert shares.recent == pytest.approx(row[136:200].sum())  # keys 136 … 199: the query's last 64
    assert shares.learned_sink == 0.25
    early = row_shares(row, 2)  # a query at position 2 sees 3 keys: both windows shrink to them
    assert (early.first_keys, early.recent_keys) == (3, 3) and early.first == pytest.approx(row[:3].sum())


# ----- the zoom at long context ----------------------------------------------------------------------------


def column_colors(zoom: AttentionZoom, width: int, height: int) -> tuple[list[str], list[Color | None]]:
    """The rendered lines as text, and the background colour of every key column of the first body row."""
    lines = zoom.lines(width, height)
    geometry = zoom.last_geometry
    colors: list[Color | None] = []
    x = 0
    for segment in lines[geometry.header_rows]:
        for _ in segment.text:
            if x >= geometry.matrix_x and (x - geometry.matrix_x) % 2 == 0:
                colors.append(segment.style.bgcolor if segment.style else None)
            x += 1
    return ["".join(s.text for s in line) for line in lines], colors[: geometry.columns]


@pytest.mark.parametrize("keys_per_column", [1, 16, 64, 256])
def test_the_zoom_window_shows_exactly_its_keys_summed_per_column(keys_per_column: int):
    data = long_row_data()
    palette = HeatPalette()
    zoom = AttentionZoom(data, layer=1, head=2, cursor=(0, 5000), keys_per_column=keys_per_column, palette=palette)
    texts, colors = column_colors(zoom, 120, 30)
    geometry = zoom.last_geometry
    first, last = zoom.visible_keys()
    assert geometry.keys_per_column == keys_per_column
    assert first % keys_per_column == 0 and first <= 5000 <= last
    assert last - first + 1 == min(KEYS - first, geometry.columns * keys_per_column)
    row = data.weights[1, 2, 0].astype(np.float64)
    by_hand = np.array([row[k : k + keys_per_column].sum() for k in range(0, KEYS, keys_per_column)])
    scale = by_hand.max()  # row scale: the row's largest bin over the whole context
    drawn = by_hand[first // keys_per_column : first // keys_per_column + geometry.columns]
    levels = to_levels(drawn / scale, palette.levels)
    cursor_column = 5000 // keys_per_column - first // keys_per_column
    for column, (level, color) in enumerate(zip(levels, colors)):
        if column != cursor_column:  # the cursor cell keeps the colour but draws brackets
            assert color == palette.color(int(level)), column
    if geometry.overview:  # a window narrower than the context: the shares line gives its share
        assert f"keys {first}–{last} {row[first : last + 1].sum():.2f}" in texts[0]
    else:
        assert (first, last) == (0, KEYS - 1)
    per = "1 col = 1 key" if keys_per_column == 1 else f"1 col = {keys_per_column} keys (sum)"
    assert texts[0].startswith(per)
    status = status_text(data, "zoom", 1, 2, (0, 5000), keys_per_column).plain
    if keys_per_column > 1:
        start = 5000 - 5000 % keys_per_column
        assert (
            f"keys {start}–{start + keys_per_column - 1} = {row[start : start + keys_per_column].sum():.4f}" in status
        )
    shares = f"first 4 keys {row[:4].sum():.2f} · last 64 keys {row[-64:].sum():.2f}"
    assert shares in texts[0]


def test_zooming_out_to_the_coarsest_binning_fits_the_whole_context():
    zoom = AttentionZoom(long_row_data(), layer=0, head=0, cursor=(0, 100), keys_per_column=10**6)
    zoom.lines(100, 24)
    assert zoom.visible_keys() == (0, KEYS - 1)
    assert not zoom.last_geometry.overview  # nothing outside the window, so no overview row


def test_binned_zoom_lists_the_strongest_keys_with_text_and_position():
    data = long_row_data()
    zoom = AttentionZoom(data, layer=0, head=3, cursor=(0, 0), keys_per_column=64)
    text = "\n".join(render(zoom, 100, 30))
    for key, weight in strongest_keys(data.weights[0, 3, 0], 6):
        assert f"{key} {data.label(key)}" in text and f"{weight:.4f}" in text


def test_a_learned_sink_gets_its_own_column_and_its_share():
    data = long_row_data(sink=True)
    palette = HeatPalette()
    zoom = AttentionZoom(data, layer=1, head=0, cursor=(0, KEYS - 1), palette=palette)
    lines = zoom.lines(120, 30)
    texts = ["".join(s.text for s in line) for line in lines]
    sink = float(data.learned_sink[1, 0, 0])
    assert f"sink {sink:.4f}" in texts[0]
    assert sink == pytest.approx(1 - data.weights[1, 0, 0].sum(dtype=np.float64), abs=1e-5)
    geometry = zoom.last_geometry
    label_row = texts[geometry.header_rows - 2]  # one row above key 0's label
    assert label_row[geometry.matrix_x - 4 : geometry.matrix_x] == "sink"
    body = lines[geometry.header_rows]
    x, sink_color = 0, None
    for segment in body:
        if x == geometry.row_label_width:
            sink_color = segment.style.bgcolor
        x += len(segment.text)
    peak = max(sink, float(data.weights[1, 0, 0].max()))  # the row scale counts the sink as part of the row
    assert sink_color == palette.color(int(to_levels(np.array([sink / peak]), palette.levels)[0]))


# ----- the grid --------------------------------------------------------------------------------------------


def test_grid_legend_says_how_many_keys_a_column_sums():
    data = long_row_data()
    grid = AttentionGrid(data)
    render(grid, 100, 10)
    per = KEYS / grid.last_geometry.cell_width
    legend = legend_text(data, "grid", "row", HeatPalette(), per).plain
    assert f"1 col = ≈{per:.0f} keys summed" in legend


def test_a_weightless_layer_is_written_not_drawn_as_zeros():
    data = long_row_data(weightless={1: "ssm"})
    lines = render(AttentionGrid(data), 120, 8)
    ssm_line = next(line for line in lines if line.lstrip().startswith("L1"))
    assert "no attention (ssm)" in ssm_line and "▀" not in ssm_line
    assert "no attention" not in next(line for line in lines if line.lstrip().startswith("L0"))
    assert data.mean_sink == pytest.approx(float(data.weights[0, :, -1, 0].mean()))  # layer 1 left out


# ----- the pane, keys --------------------------------------------------------------------------------------


class PaneApp(App):
    def compose(self) -> ComposeResult:
        yield AttentionPane()


def test_zoom_keys_bin_page_and_narrow_the_window_on_an_8192_key_step():
    data = long_row_data(sink=True)
    content = AttentionContent(data.weights, KEYS - 1, data.token_labels, 2, 7, attention_sink=data.learned_sink)

    async def scenario() -> None:
        app = PaneApp()
        async with app.run_test(size=(100, 30)) as pilot:
            pane = app.query_one(AttentionPane)
            pane.content = content
            pane.focus()
            await pilot.press("enter")
            await pilot.pause()
            canvas_view = pane._zoom_view
            assert canvas_view is not None and pane.keys_per_column == 1
            await pilot.press("minus", "minus", "minus")  # 8 keys per column
            await pilot.pause()
            assert pane.keys_per_column == 8
            first, last = pane._zoom_view.visible_keys()
            assert first % 8 == 0 and first <= pane.cursor[1] <= last
            assert "(sum of 8 keys)" in pane.status_line()
            await pilot.press("home", "pagedown")  # one window to the right of key 0
            await pilot.pause()
            span = pane._zoom_view.last_geometry.span
            assert pane.cursor[1] == span and pane._zoom_view.visible_keys()[0] == span
            await pilot.press("right")
            await pilot.pause()
            assert pane.cursor[1] == span + 8  # an arrow moves one column
            await pilot.press("pageup")
            await pilot.pause()
            assert pane.cursor[1] == 8
            for _ in range(12):
                await pilot.press("minus")
            await pilot.pause()
            assert pane._zoom_view.visible_keys() == (0, KEYS - 1)  # zoomed out to the whole context
            assert not pane.check_action("zoom_keys", (-1,))  # and no further
            for _ in range(12):
                await pilot.press("plus")
            await pilot.pause()
            assert pane.keys_per_column == 1 and not pane.check_action("zoom_keys", (1,))

    asyncio.run(scenario())


def test_the_sink_table_reports_the_learned_sink_of_the_newest_rows():
    data = long_row_data(sink=True)
    text = "\n".join(render(SinkSummary(data, layer=1, head=3), 34, 16))
    sinks = data.learned_sink[:, :, -1].astype(np.float64)
    assert "Learned attention sink" in text and "even spread" not in text  # no key-0 baseline for a learned sink
    assert f"{sinks.mean():.2f}" in text.split("mean, all heads")[1].splitlines()[0]
    assert f"{sinks[1, 3]:.2f}" in text.split("L1 H3")[1].splitlines()[0]
    layer, head = np.unravel_index(int(np.argmax(sinks)), sinks.shape)
    assert text.split("strongest sinks")[1].split()[0:2] == [f"L{layer}", f"H{head}"]
