"""The Layers pane (6) in the real playground: the capture toggle, what the grid draws, keys, 80×24, and compare.

The cells are read off the screen (the compositor's strips) and compared with the LensContent the app built;
that record is checked against a direct computation with the model's own modules in tests/engines.
"""

from __future__ import annotations

import asyncio
import html

import numpy as np
from textual.widget import Widget
from typer.testing import CliRunner

from llmscope.cli.main import app as cli_app
from llmscope.lens import bucketed_kl
from llmscope.lens_view import LENS_NEXT, LENS_OFF
from llmscope.panes import LensContent
from llmscope.session.files import load_session
from llmscope.session.replay import replay_engine_factory
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.compare_screen import CompareScreen
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.tui.lens_toggle import LENS_OFF_NOTE, LENS_ON_NOTE
from llmscope.widgets.lens.pane import LayersPane, LensGrid
from llmscope.widgets.lens.render import CELL_WIDTH, HEADER_ROWS, LABEL_WIDTH, RANK_WIDTH, fit, format_rank
from tui.test_app import until

FRANCE = "The capital of France is"


def make_app(model: str, *, lens: bool, prompt: str = FRANCE) -> LLMScopeApp:
    return LLMScopeApp(hf_engine_factory(model, logit_lens=lens), model_label=model, prompt=prompt, deterministic=True)


def screen_lines(app: LLMScopeApp, widget: Widget) -> list[str]:
    """The text the screen shows inside `widget`'s content region, one string per row."""
    region = widget.content_region
    strips = app.screen._compositor.render_strips()
    return [strips[y].crop(region.x, region.right).text for y in range(region.y, min(region.bottom, len(strips)))]


def message(app: LLMScopeApp) -> str:
    return str(app.query_one("#message").render())


def check_drawn_grid(app: LLMScopeApp) -> int:
    """Every drawn cell is its layer's top-1 text and every rank its layer's chosen rank; returns the rows seen."""
    pane, grid = app.query_one(LayersPane), app.query_one(LensGrid)
    data = pane.data
    assert data is not None
    lines = screen_lines(app, grid)
    rows = data.lenses[0].num_rows
    selected = data.lenses[pane.cursor_column]
    assert lines[0][LABEL_WIDTH + RANK_WIDTH :].startswith(f"step {data.step_indices[grid.cursor.left]}")
    seen = 0
    for line in lines[HEADER_ROWS:]:
        label = line[:3].strip()
        if not label:
            continue
        layer = 0 if label == "emb" else int(label)
        assert layer == rows - 1 - (grid.cursor.top + seen)  # output first, no row skipped
        assert line[LABEL_WIDTH : LABEL_WIDTH + RANK_WIDTH].split()[-1] == format_rank(int(selected.chosen_rank[layer]))
        cells = line[LABEL_WIDTH + RANK_WIDTH :]
        first = grid.cursor.left
        for offset in range(min(len(data.lenses) - first, len(cells) // CELL_WIDTH)):
            lens = data.lenses[first + offset]
            text = data.token_texts[int(lens.top_ids[layer, 0])]
            drawn = cells[offset * CELL_WIDTH : offset * CELL_WIDTH + CELL_WIDTH - 1]
            assert drawn == fit(text, CELL_WIDTH - 1), (layer, offset, drawn, text)
        seen += 1
    return seen


def test_l_turns_the_capture_on_and_off_and_the_pane_says_so():
    async def scenario():
        app = make_app("tiny-dense", lens=False)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("6")
            pane = app.query_one(LayersPane)
            await until(pilot, lambda: pane.unavailable_reason == LENS_OFF)
            assert "Press l in this pane" in str(app.query_one("#lens-message").render())
            assert app.focused is pane
            await pilot.press("l")
            await until(pilot, lambda: pane.unavailable_reason == LENS_NEXT)
            assert app.controller.engine.capture.logit_lens and message(app) == LENS_ON_NOTE
            await pilot.press("space")
            await until(pilot, lambda: pane.data is not None)
            assert pane.data.step_indices == (1,) and pane.data.capturing
            assert check_drawn_grid(app) == pane.data.lenses[0].num_rows  # a tiny model fits whole
            await pilot.press("l")
            await until(pilot, lambda: not app.controller.engine.capture.logit_lens)
            assert message(app) == LENS_OFF_NOTE
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 3)
            await until(pilot, lambda: not pane.data.capturing)
            assert pane.data.step_indices == (1,)  # step 2 ran without the lens; step 1's stays
            assert "capture off now" in str(app.query_one("#lens-header").render())

    asyncio.run(scenario())


def test_smollm2_paris_forms_in_the_last_layers_and_the_grid_draws_the_record(smollm2_dir):
    async def scenario():
        app = make_app("smollm2", lens=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("6")
            pane = app.query_one(LayersPane)
            await until(pilot, lambda: pane.data is not None and len(pane.data.lenses) == 3)
            data = pane.data
            engine = app.controller.engine
            (paris,) = engine.encode(" Paris")
            lens = data.lenses[0]
            assert data.step_indices == (0, 1, 2) and lens.num_rows == 31 and data.selected == 2
            assert int(lens.top_ids[-1, 0]) == paris and data.token_texts[paris] == "␣Paris"
            top1_rows = [row for row in range(lens.num_rows) if int(lens.top_ids[row, 0]) == paris]
            assert top1_rows and min(top1_rows) >= 24, top1_rows  # only the last layers guess ' Paris'
            assert check_drawn_grid(app) > 10
            await pilot.press("left", "left")  # to step 0, output row: the detail lists the model's output
            await pilot.pause()
            assert pane.cursor_column == 0
            assert check_drawn_grid(app) > 10  # the rank column now shows step 0's chosen token
            detail = screen_lines(app, app.query_one("#lens-details"))
            assert detail[0].startswith("step 0 · layer 30 of 30 (the model's own output)")
            first = detail[4].split()
            assert first[:3] == ["1", "␣Paris", f"{100 * float(lens.top_probs[-1, 0]):.1f}%"]
            header = str(app.query_one("#lens-header").render())
            if data.chosen_ids[0] == paris:
                assert f"first top-1 at layer {lens.first_top1_layer()}" in header

    asyncio.run(scenario())


def test_80x24_scrolls_the_layers_and_keeps_the_cursor_in_view(smollm2_dir):
    async def scenario():
        app = make_app("smollm2", lens=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            for count in range(2, 14):  # more steps than columns fit
                await pilot.press("space")
                await until(pilot, lambda count=count: app.view.step_count == count)
            await pilot.press("6")
            pane = app.query_one(LayersPane)
            await until(pilot, lambda: pane.data is not None and len(pane.data.lenses) == 13)
            await pilot.pause()
            shown = check_drawn_grid(app)
            assert 3 <= shown < 31
            await pilot.press("end")  # the embeddings row, far below the window
            await pilot.pause()
            lines = screen_lines(app, app.query_one(LensGrid))
            assert any(line.startswith("emb") for line in lines) and check_drawn_grid(app) == shown
            await pilot.press(*["left"] * 12)  # the first step, far left of the window
            await pilot.pause()
            assert pane.cursor_column == 0 and "step 0" in screen_lines(app, app.query_one(LensGrid))[0]
            check_drawn_grid(app)

    asyncio.run(scenario())


def test_compare_shows_both_lanes_lens_and_the_kl_lower_bound_per_layer():
    async def scenario():
        app = make_app("tiny-dense", lens=False, prompt="Hello, how are you?")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("v")
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, CompareScreen)
                    and app.screen.view is not None
                    and len(app.screen.view.records) == 3
                ),
            )
            screen = app.screen
            lanes = screen.view.lanes
            assert all(trace.lens is not None for lane in lanes for trace in lane.traces)  # compare turns it on
            assert not app.controller.engine.capture.logit_lens  # the playground's own engine is untouched
            await pilot.pause()
            lens_static = screen.query_one("#compare-lens")
            lens_static.scroll_visible(animate=False, immediate=True)
            await pilot.pause()
            lines = screen_lines(app, lens_static)
            assert lines[0].startswith("Logit lens at step 2") and "lower bound" in " ".join(lines[:3])
            header = next(number for number, line in enumerate(lines) if "A top-1" in line)
            assert "KL(A‖B) ≥" in lines[header]
            kl = bucketed_kl(lanes[0].trace_at(2).lens, lanes[1].trace_at(2).lens)
            rows = lanes[0].trace_at(2).lens.num_rows
            drawn = [line.split() for line in lines[header + 1 : header + 1 + rows]]
            assert [row[0] for row in drawn] == [*map(str, range(rows - 1, 0, -1)), "emb"]
            for layer, row in zip(range(rows - 1, -1, -1), drawn):
                lens_a, lens_b = (lane.trace_at(2).lens for lane in lanes)
                shared = set(lens_a.top_ids[layer].tolist()) & set(lens_b.top_ids[layer].tolist())
                assert row[5] == f"{len(shared)}/10"
                assert row[6] == (f"{float(kl[layer]):.3f}" if shared else "n/a")  # no shared token: no bound
            sides = screen.query_one("#compare-sides")
            assert sides.max_scroll_y > 0
            await pilot.press("pageup", "pageup")  # the details page from any focus: the lens table is reachable
            await until(pilot, lambda: sides.scroll_y == 0)
            await pilot.press("pagedown")
            await until(pilot, lambda: sides.scroll_y > 0)

    asyncio.run(scenario())


def test_a_demo_showing_the_layers_pane_captures_the_lens(tmp_path):
    """`llmscope demo` turns the capture on for a script with a lens slide, so the slide shows the grid."""
    script = tmp_path / "lens.toml"
    script.write_text(
        'title = "t"\nmodel = "tiny-dense"\n[[step]]\nprompt = "Hello"\npane = "lens"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(cli_app, ["demo", str(script), "--export-svg", str(tmp_path / "svg")])
    assert result.exit_code == 0, result.output
    (svg,) = (tmp_path / "svg").glob("*.svg")
    text = html.unescape(svg.read_text(encoding="utf-8")).replace("\xa0", " ")
    assert "chosen rank" in text and "1 step with a lens" in text  # the grid's header and the pane's
    assert "Logit lens: nothing to show" not in text


def test_a_recorded_lens_replays_without_the_model(tmp_path):
    """Recorded with the lens on, the replay's Layers pane draws the same lenses (and `l` says why it cannot)."""
    path = tmp_path / "lens.llmscope"

    async def record() -> LensContent:
        app = LLMScopeApp(
            hf_engine_factory("tiny-dense", logit_lens=True),
            model_label="tiny-dense",
            prompt="Hello",
            deterministic=True,
            record_path=path,
        )
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            assert app.view.lens is not None
            live = app.view.lens
            await pilot.press("ctrl+q")
        return live

    live = asyncio.run(record())
    session = load_session(path)

    async def replay() -> None:
        app = LLMScopeApp(
            replay_engine_factory(path, session=session),
            model_label="tiny-dense (replay)",
            prompt="Hello",
            deterministic=True,
        )
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            while app.view.step_count < 3:
                previous = app.view
                await pilot.press("space")
                await until(pilot, lambda previous=previous: app.view is not previous and not app.replay_busy)
            await pilot.press("6")
            pane = app.query_one(LayersPane)
            await until(pilot, lambda: pane.data is not None and len(pane.data.lenses) == 3)
            replayed = pane.data
            assert replayed.step_indices == live.step_indices and replayed.chosen_ids == live.chosen_ids
            for mine, theirs in zip(replayed.lenses, live.lenses):
                assert np.array_equal(mine.top_ids, theirs.top_ids)
                assert np.allclose(mine.top_probs, theirs.top_probs) and np.allclose(mine.entropy, theirs.entropy)
                assert np.array_equal(mine.chosen_rank, theirs.chosen_rank)
            assert check_drawn_grid(app) == replayed.lenses[0].num_rows
            await pilot.press("l")
            await pilot.pause()
            assert "A replay shows the logit lens" in message(app)

    asyncio.run(replay())


def test_the_lens_follows_the_step_the_other_panes_show():
    """Selecting an earlier token in the generation column moves the grid's column to that step."""

    async def scenario():
        app = make_app("tiny-dense", lens=True, prompt="Hello")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4)
            await pilot.press("left", "left", "left")  # the generation column has the focus: latest, 2, 1
            await until(pilot, lambda: app.inspected_view is not None and app.inspected_view.viewing == 1)
            await pilot.press("6")
            pane = app.query_one(LayersPane)
            await until(pilot, lambda: pane.data is not None and pane.cursor_column == 1)
            assert str(app.query_one("#lens-header").render()).startswith("step 1 chose")
            assert screen_lines(app, app.query_one("#lens-details"))[0].startswith("step 1 · layer")
            check_drawn_grid(app)

    asyncio.run(scenario())
