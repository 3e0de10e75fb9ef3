"""KV-cache pane: renderables checked against hand-computed bytes, ratios and text; pilot tests for the widget."""

from __future__ import annotations

import asyncio

from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Static

from llmscope import kvcalc
from llmscope.panes import KVContent
from llmscope.trace import KVLayerStats, KVStats
from llmscope.widgets.kv.pane import KVCachePane
from llmscope.widgets.kv.render import GrowthChart, KVSummary, LayerBytesChart, WhatIfTable, format_bytes

# SmolLM2-135M: 30 layers, 3 KV heads, head_dim 64, bf16 (2 bytes per number).
LAYERS, KV_HEADS, HEAD_DIM, BYTES = 30, 3, 64, 2


def smollm_kv(tokens: int, *, layers: int = LAYERS, seq: int | None = None) -> KVStats:
    """A KVStats as the engine measures it: K and V of shape [1, 3, seq, 64] per layer."""
    shape = (1, KV_HEADS, tokens if seq is None else seq, HEAD_DIM)
    nbytes = 2 * shape[0] * shape[1] * shape[2] * shape[3] * BYTES
    cached = tuple(KVLayerStats(index, shape, shape, "bfloat16", nbytes) for index in range(layers))
    return KVStats(cached, tokens, BYTES, LAYERS, KV_HEADS, HEAD_DIM)


def render(renderable: object, width: int = 80) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_format_bytes_by_hand() -> None:
    assert format_bytes(1023) == "1,023 B"
    assert format_bytes(1024) == "1.00 KiB"
    assert format_bytes(23_040) == "22.5 KiB"
    assert format_bytes(188_743_680) == "180 MiB"  # SmolLM2 at 8,192 tokens (CONCEPTS T16)
    assert format_bytes(3 * 2**30) == "3.00 GiB"


def test_layer_bars_sum_to_measured_total() -> None:
    kv = smollm_kv(37)
    chart = LayerBytesChart(kv)
    per_layer = 2 * 1 * 3 * 37 * 64 * 2  # K and V, [1, 3, 37, 64], 2 bytes each
    assert chart.layer_bytes == [per_layer] * 30
    assert sum(chart.layer_bytes) == kv.total_bytes == 30 * per_layer == 852_480
    text = render(chart, width=100)
    assert "each layer 27.8 KiB" in text  # 28,416 B / 1024
    assert "[1, 3, 37, 64]" in text
    assert "0" in text.splitlines()[4] and "29" in text.splitlines()[4]  # layer axis under 4 bar rows


def test_layer_bars_fit_80_columns_and_split_keys_from_values() -> None:
    text = render(LayerBytesChart(smollm_kv(37)), width=80)
    bar_rows = text.splitlines()[:4]
    assert all(len(row.rstrip()) <= 80 for row in bar_rows)
    assert all(row.count("█") == 30 for row in bar_rows)  # equal layers: 30 full columns in every row


def test_formula_text_matches_hand_computation() -> None:
    kv = smollm_kv(37)
    text = render(KVSummary(kv, step=12), width=160)
    assert "2 × 30 layers × 3 kv_heads × 64 head_dim × 37 tokens × 2 B = 852,480 B" in text
    assert "✓ matches the measured bytes" in text
    assert "852,480 B" in text and "after step 12" in text
    assert "(23,040 B)" in text  # bytes per token: 2 × 30 × 3 × 64 × 2


def test_formula_mismatch_is_explained() -> None:
    fewer_layers = render(KVSummary(smollm_kv(10, layers=20), step=1), width=160)
    assert "≠" in fewer_layers and "only 20 of 30 layers" in fewer_layers
    preallocated = render(KVSummary(smollm_kv(10, seq=64), step=1), width=160)
    assert "64 slots for 10 tokens" in preallocated


def test_growth_series_and_chart() -> None:
    history = [smollm_kv(tokens) for tokens in [24] + list(range(25, 65))]
    chart = GrowthChart(history, height=4)
    assert chart.series == [kv.total_bytes for kv in history]
    lines = render(chart, width=80).splitlines()
    assert lines[0].startswith("1.41 MiB")  # 64 tokens × 23,040 B = 1,474,560 B
    plot_rows = [line.split("▕", 1)[1] for line in lines[:4]]
    assert plot_rows[0][0] == " " and plot_rows[0][len(history) - 1] == "█"  # prefill low, last step at the top
    assert "step 0" in lines[4] and "step 40" in lines[4]
    assert "prefill 24 tokens → 540 KiB, then +22.5 KiB per generated token" in lines[5]


def test_growth_chart_buckets_long_histories() -> None:
    history = [smollm_kv(tokens) for tokens in range(1, 501)]
    lines = render(GrowthChart(history, height=3), width=60).splitlines()
    assert all(len(line) <= 60 for line in lines[:3])


def test_what_if_ratios_equal_hand_ratios() -> None:
    shape = kvcalc.get_preset("smollm2-135m")
    rows = kvcalc.what_if(shape, 37)
    table = WhatIfTable(rows, measured_bytes=852_480)
    ratios = dict(zip([label for label, _ in rows], table.ratios))
    assert ratios["as is (bf16)"] == 1.0
    assert ratios["fp16 cache"] == 1.0
    assert ratios["int8 cache (+ scales)"] == (1 + 2 / 64) / 2  # 1 byte plus an fp16 scale per 64, instead of 2
    assert ratios["int4 cache (+ scales)"] == (0.5 + 4 / 32) / 2  # half a byte plus fp16 scale and zero per 32
    assert ratios["MHA: 9 kv_heads instead of 3"] == 9 / 3
    text = render(table, width=80)
    assert "0.52×" in text and "0.31×" in text and "3.00×" in text
    assert "✓" in text.splitlines()[1]  # the as-is row equals the measured bytes
    assert "3 query heads share one KV head" in text


def test_what_if_at_max_context_column() -> None:
    shape = kvcalc.get_preset("smollm2-135m")
    text = render(WhatIfTable(kvcalc.what_if(shape, 37), at_max_context=kvcalc.what_if(shape, 8192)), width=80)
    assert "at 8,192 (max)" in text
    assert "180 MiB" in text and "540 MiB" in text  # 188,743,680 B; MHA three times that


class KVApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KVCachePane()


def test_pane_shows_data_and_unavailable_reason() -> None:
    async def run() -> None:
        app = KVApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(KVCachePane)
            assert pane.has_class("-unavailable")  # nothing shown before the first step
            history = [smollm_kv(tokens) for tokens in (5, 6, 7)]
            pane.content = KVContent(
                history=tuple(history), what_if=tuple(kvcalc.what_if(kvcalc.get_preset("smollm2-135m"), 7))
            )
            await pilot.pause()
            assert not pane.has_class("-unavailable") and not pane.has_class("-wide")
            assert pane.tokens == 7
            summary = render(app.query_one("#kv-summary", Static).content, width=78)
            assert "7 tokens × 2 B = 161,280 B" in " ".join(summary.split())
            pane.show_unavailable("Replay recorded without KV capture.")
            await pilot.pause()
            assert pane.has_class("-unavailable")
            assert "Replay recorded without KV capture." in str(app.query_one("#kv-message", Static).content)

    asyncio.run(run())


def test_pane_goes_side_by_side_when_wide() -> None:
    async def run() -> None:
        app = KVApp()
        async with app.run_test(size=(160, 48)) as pilot:
            pane = app.query_one(KVCachePane)
            pane.content = KVContent(
                history=(smollm_kv(5),), what_if=tuple(kvcalc.what_if(kvcalc.get_preset("smollm2-135m"), 5))
            )
            await pilot.pause()
            assert pane.has_class("-wide")
            layers_box, growth_box = app.query_one("#kv-layers-box"), app.query_one("#kv-growth-box")
            assert layers_box.region.y == growth_box.region.y and layers_box.region.x < growth_box.region.x

    asyncio.run(run())


def _hybrid_kv(tokens: int) -> KVStats:
    """Jamba-like: layer 0 an SSM (two fixed-size states, no keys), layer 1 full attention (4 B per number)."""
    ssm = KVLayerStats(
        0, (), (), "float32", 4 * (1 * 8 * 4 + 1 * 8 * 16), kind="ssm", conv_shape=(1, 8, 4), recurrent_shape=(1, 8, 16)
    )
    attention = KVLayerStats(1, (1, 2, tokens, 4), (1, 2, tokens, 4), "float32", 2 * 4 * 2 * tokens * 4)
    return KVStats(
        layers=(ssm, attention), tokens=tokens, bytes_per_element=4, num_layers=2, num_kv_heads=2, head_dim=4
    )


def test_layer_chart_names_each_cache_kind_and_gives_states_no_key_share() -> None:
    kv = _hybrid_kv(5)
    text = render(LayerBytesChart(kv, height=3), width=100)
    assert "SSM: fixed-size states, no keys" in text and "conv state [1, 8, 4]" in text
    assert "recurrent state [1, 8, 16]" in text and "keys [1, 2, 5, 4]" in text
    assert "= [batch, kv_heads, seq, head_dim]" not in text  # that legend only fits full attention
    from llmscope.widgets.kv.render import _key_bytes

    assert _key_bytes(kv.layers[0]) == 0 and _key_bytes(kv.layers[1]) == kv.layers[1].nbytes // 2


def test_growth_caption_says_when_the_cache_stopped_growing() -> None:
    full = render(GrowthChart([_hybrid_kv(5), _hybrid_kv(6)], height=3))
    assert "per generated token" in full
    from dataclasses import replace

    window = _hybrid_kv(4)  # a cache whose window is full: more tokens, the same bytes
    flat = render(GrowthChart([replace(window, tokens=count) for count in (5, 6, 7)], height=3))
    assert "no growth" in flat
