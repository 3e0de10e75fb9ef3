"""Attention pane: the numbers it draws come from the array, long rows pool without losing peaks, keys work."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from rich.console import Console
from textual.app import App, ComposeResult

from llmscope.panes import AttentionContent
from llmscope.widgets.attention.canvas import AttentionCanvas
from llmscope.widgets.attention.data import (
    AttentionData,
    grid_pixels,
    kv_group_of,
    kv_groups,
    normalize,
    pool_max,
    sink_fractions,
    uniform_sink_baseline,
)
from llmscope.widgets.attention.grid import AttentionGrid
from llmscope.widgets.attention.palette import HeatPalette
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.attention.summary import SinkSummary, status_text
from llmscope.widgets.attention.zoom import AttentionZoom


def causal_attention(layers: int, heads: int, rows: int, keys: int, seed: int = 0) -> np.ndarray:
    """Softmax rows over the causal prefix, float32 [layers, heads, rows, keys] (rows are the last positions)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 2.0, (layers, heads, rows, keys))
    positions = np.arange(keys - rows, keys)[:, None]
    scores = np.where(np.arange(keys)[None, :] <= positions, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def labels(keys: int) -> list[str]:
    return ["<s>"] + [f"␣w{i}" for i in range(1, keys)]


def data_of(weights: np.ndarray, kv_heads: int, step: int | None = None) -> AttentionData:
    keys, rows = weights.shape[3], weights.shape[2]
    return AttentionData(weights, keys - rows, tuple(labels(keys)), kv_heads, step)


def render(renderable: object, width: int, height: int) -> list[str]:
    console = Console(record=True, width=width, height=height, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable, height=height)
    return console.export_text().splitlines()


# ----- pure numbers ----------------------------------------------------------------------------------------


def test_pooling_1000_keys_into_40_bins_keeps_every_bin_maximum():
    row = np.random.default_rng(1).random(1000)
    row[777] = 5.0
    pooled = pool_max(row, 40)
    assert pooled.shape == (40,)
    assert pooled.max() == 5.0 and int(np.argmax(pooled)) == 777 // 25
    for b in range(40):  # 1000 / 40 = 25 keys per bin
        assert pooled[b] == row[25 * b : 25 * (b + 1)].max()


def test_grid_bar_shows_a_lone_spike_in_the_right_column():
    weights = np.zeros((1, 1, 1, 1000), dtype=np.float32)
    weights[0, 0, 0, 777] = 1.0
    data = AttentionData(weights, 999, tuple(labels(1000)), 1)
    grid = AttentionGrid(data)
    lines = render(grid, 60, 4)
    geometry = grid.last_geometry
    bar = lines[geometry.header_rows]
    painted = [x for x, char in enumerate(bar) if char in "▀▄█"]
    assert painted == [geometry.head_x[0] + 777 * geometry.cell_width // 1000]


def test_row_normalisation_divides_each_row_by_its_max_and_global_by_the_overall_max():
    weights = np.array([[0.1, 0.3, 0.6], [0.5, 0.25, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(normalize(weights, "row"), [[1 / 6, 0.5, 1.0], [1.0, 0.5, 0.5]], rtol=1e-6)
    np.testing.assert_allclose(normalize(weights, "global"), weights / 0.6, rtol=1e-6)


def test_grid_pixels_follow_the_documented_scales():
    weights = causal_attention(2, 3, 1, 120, seed=3)
    bins = 12  # 120 keys, 10 per bin
    by_hand = weights.reshape(2, 3, 1, bins, 10).sum(axis=-1)  # a bin is the share of the row its keys got
    row = grid_pixels(weights, 1, bins, "row")
    np.testing.assert_allclose(row, by_hand / by_hand.max(axis=-1, keepdims=True), rtol=1e-5)
    assert np.allclose(row.max(axis=-1), 1.0)  # every head's strongest bin is full brightness
    np.testing.assert_allclose(grid_pixels(weights, 1, bins, "global"), by_hand / by_hand.max(), rtol=1e-5)


def test_sink_is_the_newest_rows_weight_on_key_0():
    """One definition (llmscope.attention_stats): the newest query row, not a mean over prefill rows."""
    weights = causal_attention(3, 4, 5, 9, seed=2)
    sinks = sink_fractions(weights)
    for layer in range(3):
        for head in range(4):
            assert sinks[layer, head] == pytest.approx(float(weights[layer, head, 4, 0]), rel=1e-6)
    assert uniform_sink_baseline(query_start=4, query_rows=5) == pytest.approx(1 / 9)  # newest row: position 8


def test_sink_table_prints_the_overall_mean_and_the_strongest_head():
    weights = causal_attention(3, 4, 1, 30, seed=4)
    weights[2, 1, 0] = 0.0
    weights[2, 1, 0, 0] = 1.0  # one head puts everything on the first token
    text = "\n".join(render(SinkSummary(data_of(weights, 2), layer=0, head=0), 34, 14))
    assert f"{weights[:, :, 0, 0].mean():.2f}" in text
    table = text.split("strongest sinks")[1].strip().splitlines()
    assert table[0].startswith("L2 H1") and table[0].endswith("1.00")
    second = np.sort(weights[:, :, 0, 0].ravel())[-2]
    assert table[1].endswith(f"{second:.2f}")
    even = next(line for line in text.splitlines() if line.startswith("even spread"))
    assert even.endswith(f"{1 / 30:.2f}")  # an even spread over 30 keys gives each key 1/30


def test_gqa_groups_for_9_heads_over_3_kv_heads():
    assert kv_groups(9, 3) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert [kv_group_of(head, 9, 3) for head in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_grid_header_brackets_each_kv_group_over_its_heads():
    lines = render(AttentionGrid(data_of(causal_attention(2, 9, 1, 50), 3)), 100, 8)
    brackets, heads = lines[0], lines[1]
    for group, (first, last) in enumerate([(0, 2), (3, 5), (6, 8)]):
        name = brackets.index(f"KV{group}")
        opening = brackets.rindex("┌", 0, name)
        closing = brackets.index("┐", name)
        assert opening <= heads.index(f"H{first}") and heads.index(f"H{last}") < closing
        assert all(not opening <= heads.index(f"H{h}") < closing for h in range(9) if not first <= h <= last)


def test_plain_multi_head_attention_draws_no_kv_brackets():
    lines = render(AttentionGrid(data_of(causal_attention(2, 4, 1, 20), 4)), 80, 6)
    assert "KV" not in "\n".join(lines) and "H3" in lines[0]


def test_grid_pools_each_layer_once_and_reuses_it_when_only_the_selection_moves(monkeypatch):
    import llmscope.widgets.attention.grid as grid_module

    calls: list[int] = []
    original = grid_module.grid_pixels

    def counting(weights, *args, **kwargs):
        calls.append(1)
        return original(weights, *args, **kwargs)

    monkeypatch.setattr(grid_module, "grid_pixels", counting)
    data = data_of(causal_attention(6, 3, 8, 8), 3)
    cache = grid_module.GridCellCache()
    AttentionGrid(data, cache=cache).lines(60, 40)
    assert len(calls) == 6  # one pooling per visible layer
    AttentionGrid(data, layer=4, head=2, cache=cache).lines(60, 40)
    assert len(calls) == 6
    AttentionGrid(data, layer=4, head=2, normalization="global", cache=cache).lines(60, 40)
    assert len(calls) == 12


# ----- the zoom view ---------------------------------------------------------------------------------------


def test_zoom_status_reports_the_array_weight_under_the_cursor():
    weights = causal_attention(4, 6, 12, 40, seed=5)
    data = data_of(weights, 2, step=0)
    status = status_text(data, "zoom", 3, 5, (7, 0)).plain
    position = 28 + 7
    assert status == f"L3 H5 · query {position} '␣w{position}' → key 0 '<s>' = {float(weights[3, 5, 7, 0]):.4f}"


def test_zoom_labels_both_axes_and_marks_the_cursor():
    weights = causal_attention(2, 2, 20, 20, seed=6)
    zoom = AttentionZoom(data_of(weights, 1), layer=1, head=0, cursor=(12, 4))
    text = "\n".join(render(zoom, 80, 24))
    assert "12 ␣w12" in text  # the query row label: position then token
    assert "␣w4" in text and "<s>" in text  # key labels above the columns
    assert text.count("[]") == 1


def test_zoom_colours_follow_row_or_global_scale():
    weights = np.zeros((1, 1, 2, 2), dtype=np.float32)
    weights[0, 0, 0] = [1.0, 0.0]
    weights[0, 0, 1] = [0.75, 0.25]
    data = AttentionData(weights, 0, ("<s>", "␣a"), 1)
    palette = HeatPalette()

    def cell_color(normalization: str):
        zoom = AttentionZoom(data, layer=0, head=0, cursor=(0, 0), normalization=normalization, palette=palette)
        line = zoom.lines(40, 10)[zoom.last_geometry.header_rows + 1]  # query row 1
        x = 0
        for segment in line:
            if x == zoom.last_geometry.row_label_width + 2:  # key 1 of row 1
                return segment.style.bgcolor
            x += segment.cell_length
        raise AssertionError("cell not found")

    level_of = lambda value: 1 + round(value * (palette.levels - 2))  # noqa: E731 - the documented level map
    assert cell_color("row") == palette.color(level_of(0.25 / 0.75))
    assert cell_color("global") == palette.color(level_of(0.25 / 1.0))


def test_decode_zoom_shows_the_context_as_text_with_the_cursor_token_marked():
    weights = causal_attention(1, 1, 1, 12, seed=11)
    zoom = AttentionZoom(data_of(weights, 1), layer=0, head=0, cursor=(0, 5))
    text = "\n".join(render(zoom, 80, 20))
    assert "query 11" in text
    assert "<s>␣w1␣w2␣w3␣w4␣w5␣w6␣w7␣w8␣w9␣w10␣w11" in text  # every visible token, in order


def test_a_2000_token_context_stays_windowed():
    weights = causal_attention(1, 1, 1, 2000, seed=7)
    zoom = AttentionZoom(data_of(weights, 1), layer=0, head=0, cursor=(0, 1500))
    lines = render(zoom, 80, 24)
    assert len(lines) == 24
    first_key, last_key = zoom.visible_keys()
    assert last_key - first_key + 1 == zoom.last_geometry.columns  # one key per column
    assert first_key <= 1500 <= last_key < 2000
    assert f"keys {first_key}–{last_key}" in lines[0]  # the shares line names the window


# ----- the widget ------------------------------------------------------------------------------------------


class PaneApp(App):
    """Just the pane, collecting the messages it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.selected: list[tuple[int, int]] = []

    def compose(self) -> ComposeResult:
        yield AttentionPane()

    def on_attention_pane_head_selected(self, message: AttentionPane.HeadSelected) -> None:
        self.selected.append((message.layer, message.head))


def test_keys_move_the_cursor_and_change_layer_head_and_scale():
    weights = causal_attention(4, 6, 1, 40, seed=8)

    async def scenario() -> None:
        app = PaneApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(AttentionPane)
            pane.content = AttentionContent(
                weights, query_start=39, token_labels=tuple(labels(40)), num_kv_heads=2, step_index=5
            )
            pane.focus()
            await pilot.pause()
            assert (pane.layer_index, pane.head, pane.mode, pane.normalization) == (0, 0, "grid", "row")
            await pilot.press("down", "right", "right")
            assert (pane.layer_index, pane.head) == (1, 2)
            await pilot.press("enter")
            assert pane.mode == "zoom"
            start_key = pane.cursor[1]
            await pilot.press("home", "right", "right", "right", "right_square_bracket", "full_stop")
            assert pane.cursor == (0, 3) and (pane.layer_index, pane.head) == (2, 3)
            await pilot.pause()
            assert pane.status_line() == (f"L2 H3 · query 39 '␣w39' → key 3 '␣w3' = {float(weights[2, 3, 0, 3]):.4f}")
            assert start_key == int(np.argmax(weights[0, 0, 0]))
            await pilot.press("n")
            assert pane.normalization == "global"
            await pilot.press("g")
            assert pane.mode == "grid"
            await pilot.press("left_square_bracket", "comma")
            await pilot.pause()
            assert (pane.layer_index, pane.head) == (1, 2)
            assert app.selected[0] == (0, 0) and app.selected[-1] == (1, 2) and (2, 3) in app.selected

    asyncio.run(scenario())


def test_clicking_a_grid_cell_selects_that_head_and_a_second_click_zooms():
    weights = causal_attention(4, 6, 1, 40, seed=9)

    async def scenario() -> None:
        app = PaneApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(AttentionPane)
            pane.content = AttentionContent(weights, query_start=39, token_labels=tuple(labels(40)), num_kv_heads=2)
            await pilot.pause()
            canvas = app.query_one(AttentionCanvas)
            geometry = canvas.view.last_geometry
            offset = (1 + geometry.head_x[4] + 1, geometry.header_rows + 2 * geometry.rows_per_layer)
            await pilot.click(AttentionCanvas, offset=offset)
            assert (pane.layer_index, pane.head) == (2, 4)
            await pilot.click(AttentionCanvas, offset=offset)
            assert pane.mode == "zoom"

    asyncio.run(scenario())


def test_unavailable_reason_is_shown_instead_of_a_blank_pane():
    async def scenario() -> None:
        app = PaneApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(AttentionPane)
            reason = "Attention capture is switched off for this session."
            pane.show_unavailable(reason)
            await pilot.pause()
            message = app.query_one("#attention-unavailable")
            assert message.display and str(message.render()) == reason
            assert not app.query_one("#attention-body").display
            pane.content = AttentionContent(
                causal_attention(2, 2, 1, 5), query_start=4, token_labels=tuple(labels(5)), num_kv_heads=1
            )
            await pilot.pause()
            assert not message.display and app.query_one("#attention-body").display

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("rows,keys", [(1, 300), (64, 300)])
def test_smollm2_sized_grid_renders_at_both_sizes(size: tuple[int, int], rows: int, keys: int):
    weights = causal_attention(30, 9, rows, keys, seed=10)

    async def scenario() -> None:
        app = PaneApp()
        async with app.run_test(size=size) as pilot:
            pane = app.query_one(AttentionPane)
            pane.content = AttentionContent(
                weights, query_start=keys - rows, token_labels=tuple(labels(keys)), num_kv_heads=3
            )
            await pilot.pause()
            canvas = app.query_one(AttentionCanvas)
            lines = [canvas.render_line(y).text for y in range(canvas.size.height)]
            assert all(len(line) == canvas.size.width for line in lines)
            assert "KV2" in lines[0] and "H8" in lines[1] and lines[2].lstrip().startswith("L0")
            assert pane.has_class("-wide") == (size[0] >= 110)
            await pilot.press("enter")
            await pilot.pause()
            assert "[]" in "".join(canvas.render_line(y).text for y in range(canvas.size.height))

    asyncio.run(scenario())


def test_help_text_is_written_for_a_learner():
    assert "sink" in AttentionPane.HELP and "key/value" in AttentionPane.HELP
    assert len(AttentionPane.HELP.split()) > 60
