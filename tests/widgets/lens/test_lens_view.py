"""Layers pane: the grid, rank bars, markers and cell details checked against hand-made lenses; pilot tests of keys.

The lenses are built from hand-written log-probabilities with `llmscope.lens.from_log_probs`, so every rank,
probability and entropy drawn here is known without a model.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
from rich.console import Console
from textual.app import App, ComposeResult

from llmscope.lens import bucketed_kl, from_log_probs
from llmscope.panes import LensContent, Unavailable
from llmscope.widgets.lens.compare import KL_HEADER, lens_compare_renderable
from llmscope.widgets.lens.pane import LayersPane, LensGrid
from llmscope.widgets.lens.render import (
    FIRST_MARK,
    LABEL_WIDTH,
    RANK_WIDTH,
    SETTLED_MARK,
    GridCursor,
    LensStyles,
    detail_renderable,
    fit,
    follow,
    format_rank,
    grid_text,
    rank_fraction,
    step_summary,
)

TEXTS = {0: "␣the", 1: "␣Paris", 2: "␣city", 3: "⏎", 4: "␣France", 5: "猫猫猫猫猫"}
"""Visible texts of a six-token vocabulary (one wide-character token to test cutting)."""


def lens_rows(*rows: list[float]):
    """A lens from per-row probabilities over the 6-token vocabulary (normalised here), resolved later."""
    probs = np.array(rows, dtype=np.float64)
    probs /= probs.sum(axis=1, keepdims=True)
    return from_log_probs(np.log(probs).astype(np.float32), k=4)


# Step 0: ' Paris' (1) is ranked 3rd at emb, 1st at layer 1, 2nd at layer 2, 1st at layers 3 and 4 (the output).
STEP0 = lens_rows(
    [0.40, 0.15, 0.30, 0.05, 0.05, 0.05],
    [0.20, 0.50, 0.10, 0.10, 0.05, 0.05],
    [0.45, 0.35, 0.05, 0.05, 0.05, 0.05],
    [0.10, 0.70, 0.10, 0.04, 0.03, 0.03],
    [0.02, 0.90, 0.02, 0.02, 0.02, 0.02],
).resolved(1)
# Step 1: '⏎' (3) was sampled: never top-1 anywhere.
STEP1 = lens_rows(
    [0.30, 0.10, 0.10, 0.20, 0.10, 0.20],
    [0.10, 0.10, 0.50, 0.10, 0.10, 0.10],
    [0.10, 0.10, 0.10, 0.10, 0.10, 0.50],
    [0.10, 0.10, 0.60, 0.10, 0.05, 0.05],
    [0.05, 0.05, 0.70, 0.15, 0.03, 0.02],
).resolved(3)


def content(selected: int = 0, capturing: bool = True) -> LensContent:
    return LensContent(
        lenses=(STEP0, STEP1),
        step_indices=(0, 1),
        chosen_ids=(1, 3),
        token_texts=TEXTS,
        selected=selected,
        model_name="hand",
        capturing=capturing,
    )


def plain(renderable: object, width: int = 100) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_hand_lens_resolves_as_written() -> None:
    """The fixtures mean what their comments say (ranks by hand from the rows above)."""
    assert STEP0.chosen_rank.tolist() == [3, 1, 2, 1, 1]
    assert STEP0.first_top1_layer() == 1 and STEP0.settled_layer() == 3
    assert STEP1.chosen_rank.tolist() == [2, 2, 2, 2, 2]
    assert STEP1.first_top1_layer() is None and STEP1.settled_layer() is None


def test_grid_rows_run_from_output_to_embeddings_with_each_layers_top1() -> None:
    lines = plain(grid_text(content(), GridCursor(layer=4, column=0), 100, 20, LensStyles.plain()))
    assert lines[0].split()[:4] == ["layer", "chosen", "rank", "step"]
    assert "␣Paris" in lines[1] and "⏎" in lines[1]  # each step's chosen token under its number
    body = lines[2:]
    assert [line.split()[0] for line in body] == ["4", "3", "2", "1", "emb"]
    for line, layer in zip(body, [4, 3, 2, 1, 0]):
        cells = [fit(TEXTS[int(lens.top_ids[layer, 0])], 8) for lens in (STEP0, STEP1)]
        assert line.endswith(" ".join(cells).rstrip()), line  # 8-cell cells and a gap, wide text cut with '…'
        assert line[6:19].split()[-1] == str(STEP0.chosen_rank[layer])  # the rank column of the selected step


def test_headers_sit_above_their_cells() -> None:
    lines = plain(grid_text(content(), GridCursor(layer=4, column=0), 100, 20, LensStyles.plain()))
    start = LABEL_WIDTH + RANK_WIDTH
    assert lines[0][start:].startswith("step 0   step 1")
    assert lines[1][start:].startswith("␣Paris   ⏎")
    assert lines[2][start:].startswith("␣Paris   ␣city")


def test_markers_sit_on_first_top1_and_settled_rows() -> None:
    lines = plain(grid_text(content(), GridCursor(layer=4, column=0), 100, 20, LensStyles.plain()))
    marked = {line.split()[0]: line[4:6] for line in lines[2:]}
    assert marked["1"] == FIRST_MARK + " "  # layer 1: first top-1
    assert marked["3"] == " " + SETTLED_MARK  # layer 3: top-1 from here to the output
    assert marked["2"] == marked["4"] == marked["emb"] == "  "


def test_summary_says_where_the_token_formed() -> None:
    assert step_summary(content(), 0) == (
        f"step 0 chose '␣Paris': {FIRST_MARK} first top-1 at layer 1, {SETTLED_MARK} settled from layer 3."
    )
    assert "no layer ranks it first" in step_summary(content(), 1)


def test_ranks_read_short() -> None:
    assert [format_rank(rank) for rank in (1, 312, 9999, 10_000, 49_137, 2_500_000)] == [
        "1",
        "312",
        "9999",
        "10k",
        "49k",
        "2M",
    ]


def test_rank_bars_are_log_scaled() -> None:
    assert rank_fraction(1, 3.0) == 1.0
    assert math.isclose(rank_fraction(10, 3.0), 2 / 3) and math.isclose(rank_fraction(100, 3.0), 1 / 3)
    assert rank_fraction(10_000, 3.0) == 0.0


def test_cell_text_fits_its_width_with_wide_characters() -> None:
    assert fit("␣Paris", 8) == "␣Paris  "
    assert fit("␣Parisienne", 8) == "␣Parisi…"
    assert fit("猫猫猫猫猫", 8) == "猫猫猫 …"  # 3 wide characters (6 cells), a pad cell where half a 猫 would go
    assert Console().measure(fit("猫猫猫猫猫", 8)).maximum == 8


def test_window_follows_the_cursor() -> None:
    assert follow(0, 3, 5, 31) == 0
    assert follow(0, 7, 5, 31) == 3  # moved just enough to show row 7 last
    assert follow(10, 4, 5, 31) == 4  # moved back up to it
    assert follow(29, 30, 5, 31) == 26  # never past the end
    lines = plain(grid_text(content(), GridCursor(layer=1, column=0, top=2), 100, 5, LensStyles.plain()))
    assert [line.split()[0] for line in lines[2:]] == ["2", "1", "emb"]  # 3 rows fit under the 2 header rows


def test_detail_lists_candidates_entropy_and_the_chosen_token() -> None:
    lines = plain(detail_renderable(content(), 2, 0, LensStyles.plain()))
    assert lines[0] == "step 0 · layer 2 of 4"
    probs = np.array([0.45, 0.35, 0.05, 0.05, 0.05, 0.05])
    entropy = float(-(probs * np.log(probs)).sum())
    assert lines[1].startswith(f"entropy {entropy:.2f} nats") and f"~{math.exp(entropy):,.0f} equally" in lines[1]
    assert lines[2] == "chosen ␣Paris  rank 2 · p 35.0%"
    assert lines[4].split()[:3] == ["1", "␣the", "45.0%"] and lines[5].split()[:3] == ["2", "␣Paris", "35.0%"]
    assert lines[-1].split()[-1] == "10.0%"  # four kept (45+35+5+5 %), the rest pooled
    assert plain(detail_renderable(content(), 4, 0, LensStyles.plain()))[0] == (
        "step 0 · layer 4 of 4 (the model's own output)"
    )
    assert (
        plain(detail_renderable(content(), 0, 0, LensStyles.plain()))[0] == "step 0 · the embeddings (before any layer)"
    )


class FakeLane:
    """What lens_compare_renderable reads of a LaneView."""

    def __init__(self, name: str, lens) -> None:
        self.name, self.lens_texts = name, TEXTS
        self.traces = [type("Trace", (), {"lens": lens})()]

    def trace_at(self, index: int):
        return self.traces[index] if 0 <= index < len(self.traces) else None


def test_compare_table_shows_both_top1_and_the_kl_lower_bound() -> None:
    lanes = (FakeLane("A", STEP0), FakeLane("B", STEP1))
    lines = plain(lens_compare_renderable(lanes, 0), width=200)
    assert "is a lower bound: it compares only the tokens in both lanes' top-4" in lines[0]
    header = next(number for number, line in enumerate(lines) if "A top-1" in line)
    assert KL_HEADER in lines[header]
    kl = bucketed_kl(STEP0, STEP1)
    rows = {line.split()[0]: line.split() for line in lines[header + 1 :]}
    assert list(rows) == ["4", "3", "2", "1", "emb"]
    for layer, label in enumerate(["emb", "1", "2", "3", "4"]):
        assert float(rows[label][6]) == round(float(kl[layer]), 3), label
        assert rows[label][1] == TEXTS[int(STEP0.top_ids[layer, 0])]
        assert rows[label][3] == TEXTS[int(STEP1.top_ids[layer, 0])]
    # layer 4 by hand: shared top-4 tokens and the rest bucket, KL(p‖q) = Σ p ln p/q
    p_rows = np.array([0.02, 0.90, 0.02, 0.02, 0.02, 0.02])
    q_rows = np.array([0.05, 0.05, 0.70, 0.15, 0.03, 0.02])
    p_keep = {int(t) for t in STEP0.top_ids[4]}
    q_keep = {int(t) for t in STEP1.top_ids[4]}
    shared = sorted(p_keep & q_keep)
    p = np.array([*p_rows[shared], 1 - p_rows[shared].sum()])
    q = np.array([*q_rows[shared], 1 - q_rows[shared].sum()])
    assert math.isclose(float(kl[4]), float((p * np.log(p / q)).sum()), rel_tol=1e-5)
    same = plain(lens_compare_renderable((FakeLane("A", STEP0), FakeLane("B", STEP0)), 0), width=200)
    assert all(float(line.split()[6]) == 0.0 and line.split()[5] == "4/4" for line in same[header + 1 :])
    missing = plain(lens_compare_renderable((FakeLane("A", STEP0), FakeLane("B", None)), 0), width=160)
    assert "not captured at step 0 in lane B" in missing[0]


def test_layers_whose_lanes_share_no_candidate_say_n_a_not_zero() -> None:
    """Over no shared token the lower bound is a vacuous 0: the table must not draw such lanes as agreeing."""

    def top2(*rows: list[float]):
        probs = np.array(rows, dtype=np.float64)
        return from_log_probs(np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32), k=2)

    lane_a = top2([0.45, 0.45, 0.03, 0.03, 0.02, 0.02], [0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
    lane_b = top2([0.02, 0.02, 0.45, 0.45, 0.03, 0.03], [0.4, 0.1, 0.3, 0.1, 0.05, 0.05])
    lines = plain(lens_compare_renderable((FakeLane("A", lane_a), FakeLane("B", lane_b)), 0), width=200)
    header = next(number for number, line in enumerate(lines) if "A top-1" in line)
    rows = {line.split()[0]: line for line in lines[header + 1 :]}
    assert rows["emb"].split()[5:7] == ["0/2", "n/a"] and "no shared token" in rows["emb"]  # tokens 0,1 vs 2,3
    shared = rows["1"].split()  # both keep token 0: a real bound
    assert shared[5] == "1/2" and float(shared[6]) == round(float(bucketed_kl(lane_a, lane_b)[1]), 3)


class LensApp(App[None]):
    def __init__(self, first: LensContent | Unavailable) -> None:
        super().__init__()
        self.first = first
        self.toggles = 0

    def compose(self) -> ComposeResult:
        yield LayersPane(id="lens")

    def on_mount(self) -> None:
        pane = self.query_one(LayersPane)
        pane.content = self.first
        pane.focus()

    def on_layers_pane_toggle_requested(self, _message: LayersPane.ToggleRequested) -> None:
        self.toggles += 1


def detail_title(app: App) -> str:
    return plain(app.query_one("#lens-detail").content)[0]


def test_keys_move_the_cell_and_the_details_follow() -> None:
    async def run() -> None:
        app = LensApp(content(selected=1))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            pane = app.query_one(LayersPane)
            assert (pane.cursor_layer, pane.cursor_column) == (4, 1)  # the output row of the step the panes show
            assert detail_title(app) == "step 1 · layer 4 of 4 (the model's own output)"
            await pilot.press("down", "down", "left")
            assert (pane.cursor_layer, pane.cursor_column) == (2, 0)
            assert detail_title(app) == "step 0 · layer 2 of 4"
            await pilot.press("end")
            assert pane.cursor_layer == 0 and detail_title(app).endswith("the embeddings (before any layer)")
            await pilot.press("pageup")
            assert pane.cursor_layer == 4  # 5 up, clamped at the output
            await pilot.press("left", "down", "down", "down", "down", "down", "down")
            assert (pane.cursor_layer, pane.cursor_column) == (0, 0)  # clamped at both edges
            await pilot.press("home")
            assert pane.cursor_layer == 4
            await pilot.press("l")
            await pilot.pause()
            assert app.toggles == 1
            grid = app.query_one(LensGrid)
            await pilot.click(LensGrid, offset=(6 + 13 + 1 + 9 + 2, 2 + 3))  # column 1, display row 3 = layer 1
            assert (pane.cursor_layer, pane.cursor_column) == (1, 1) and grid.cursor.layer == 1

    asyncio.run(run())


def test_new_step_moves_the_cursor_to_the_step_shown_and_capture_off_is_said() -> None:
    async def run() -> None:
        app = LensApp(content(selected=0))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            pane = app.query_one(LayersPane)
            await pilot.press("down")
            pane.content = content(selected=1, capturing=False)
            await pilot.pause()
            assert (pane.cursor_layer, pane.cursor_column) == (3, 1)  # the layer stays, the step follows
            header = str(app.query_one("#lens-header").content)
            assert "capture off now (l turns it on)" in header and header.startswith("step 1 chose '⏎'")

    asyncio.run(run())


def test_unavailable_reason_replaces_the_grid() -> None:
    async def run() -> None:
        app = LensApp(Unavailable("The logit lens is off: press l."))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            message = app.query_one("#lens-message")
            assert message.display and "The logit lens is off: press l." in str(message.content)
            assert not app.query_one("#lens-body").display

    asyncio.run(run())


def test_compare_across_vocabularies_shows_guesses_but_no_kl() -> None:
    lines = plain(lens_compare_renderable((FakeLane("A", STEP0), FakeLane("B", STEP1)), 0, comparable=False), 200)
    assert "vocabularies differ, so no KL" in lines[0]
    assert all(KL_HEADER not in line and "shared" not in line for line in lines[1:])
    assert lines[2].split()[:5] == ["4", "␣Paris", "90.0%", "␣city", "70.0%"]
