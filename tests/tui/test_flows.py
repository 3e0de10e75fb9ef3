"""The headline flows walked as a user walks them (issue 12): help from any focus, knobs, numbering, palette."""

from __future__ import annotations

import asyncio

import pytest

from llmscope.widgets.sampler.knobs import KnobPanel
from tui.test_app import make_app, until


def test_help_after_tab_explains_the_visible_pane(tiny_model_dirs):
    """Tab moves focus onto the tab strip (a Textual widget whose HELP is None): ? must still open the pane's help."""

    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("tab")
            await pilot.pause()
            await pilot.press("question_mark")
            await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            markdown = app.screen.query_one("Markdown")
            assert "# Logits & sampler" in markdown.source  # the visible tab's pane, not the tab strip
            await pilot.press("escape")
            await until(pilot, lambda: type(app.screen).__name__ != "HelpScreen")

    asyncio.run(scenario())


async def settled(pilot, app) -> None:
    """Until no worker runs and the screen has processed its messages."""
    await until(pilot, lambda: not any(worker.is_running for worker in app.workers))
    await pilot.pause(0.2)
    await until(pilot, lambda: not any(worker.is_running for worker in app.workers))


def test_fast_nudges_leave_the_table_on_the_value_in_the_box(tiny_model_dirs):
    """↑ eight times quickly on temperature (then top-p ↓, min-p ↑): the view uses the value the box shows."""

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("2")
            for knob, key, expected in (("temperature", "up", 1.8), ("top_p", "down", 0.6), ("min_p", "up", 0.08)):
                field = app.query_one(f"#knob-{knob}")
                field.focus()
                await pilot.pause()
                for _ in range(8):  # keys arriving faster than the app handles them: every nudge before any Changed
                    field.action_nudge(1 if key == "up" else -1)
                await settled(pilot, app)
                assert field.value == f"{expected:g}"
                assert getattr(app.view.config, knob) == pytest.approx(expected), knob
                assert getattr(app.query_one(KnobPanel).config, knob) == pytest.approx(expected)
                summary = str(app.query_one("#knob-summary").render())
                assert summary == app.view.config.describe()
                assert app.view.config.describe() in str(app.query_one("#message").render())
                assert app.view.sample.config == app.view.config  # the table's stages use these knobs

    asyncio.run(scenario())


def test_knob_hotkeys_outside_the_form_and_undo(tiny_model_dirs):
    """> < } { ) ( nudge temperature, top-p and top-k from anywhere but a text field; u takes changes back."""

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            calls = app.controller.engine.forward_calls
            await pilot.press("greater_than_sign", "greater_than_sign", "left_curly_bracket", "right_parenthesis")
            await settled(pilot, app)
            config = app.view.config
            assert (config.temperature, config.top_p, config.top_k) == (1.2, 0.95, 1)
            assert app.query_one("#knob-temperature").value == "1.2" and app.query_one("#knob-top_k").value == "1"
            assert app.controller.engine.forward_calls == calls  # re-sampled, not recomputed
            await pilot.press("u")
            await settled(pilot, app)
            assert app.view.config.top_k == 0 and app.view.config.top_p == 0.95
            await pilot.press("u", "u", "u")
            await settled(pilot, app)
            assert app.view.config == app.query_one(KnobPanel).config and app.view.config.temperature == 1.0
            await pilot.press("u")  # nothing left to undo: a notice, no change
            await settled(pilot, app)
            assert app.view.config.temperature == 1.0
            await pilot.press("e", "greater_than_sign")  # in the prompt field '>' is a character
            await settled(pilot, app)
            assert app.query_one("#prompt").value.endswith(">") and app.view.config.temperature == 1.0

    asyncio.run(scenario())


def screen_text(widget) -> str:
    """What a widget shows, as plain text lines."""
    from textual.geometry import Region

    return "\n".join(strip.text for strip in widget.render_lines(Region(0, 0, *widget.size)))


def test_every_pane_numbers_the_step_the_same_way(tiny_model_dirs):
    """Prefill is step 0: after one more step every pane, the status bar and the messages say step 1."""

    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            assert "step 1" in screen_text(app.query_one("#generation-title"))
            assert "step 1" in screen_text(app.query_one("#status"))
            assert "step 2" not in screen_text(app.query_one("#status"))
            await pilot.press("3")
            await pilot.pause(0.2)
            assert "step 1" in screen_text(app.query_one("#attention-title"))
            await pilot.press("4")
            await pilot.pause(0.2)
            assert "after step 1" in screen_text(app.query_one("#kv-summary"))
            await pilot.press("greater_than_sign")
            await settled(pilot, app)
            assert "Re-sampled step 1" in str(app.query_one("#message").render())
            assert "step 1" in screen_text(app.query_one("#generation-title"))

    asyncio.run(scenario())


def test_the_tokens_pane_shows_the_run_and_marks_unrun_edits(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"], prompt="Hello, how are you?")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("1")
            await pilot.pause(0.2)
            pane = app.query_one("#tokens-pane")
            run = [t.id for t in app.view.prompt_tokens] + [t.id for t, _ in app.view.generated]
            assert [token.id for token in pane.tokens] == run and pane.generated == 3
            line = screen_text(app.query_one("#token-run"))
            assert f"{len(app.view.prompt_tokens)} prompt + 3 generated" in line and "not run" not in line
            await pilot.press("e", "end", "exclamation_mark")
            await pilot.pause(0.5)
            assert [token.id for token in pane.tokens] == run  # still the run on screen…
            assert "Prompt edited, not run yet" in screen_text(app.query_one("#token-run"))  # …marked as edited
            await pilot.press("enter")
            await until(pilot, lambda: app.view.prompt_text.endswith("!") and app.view.step_count == 1)
            await pilot.press("1")
            await pilot.pause(0.2)
            assert pane.generated == 1 and "not run" not in screen_text(app.query_one("#token-run"))
            assert len(pane.tokens) == len(app.view.prompt_tokens) + 1

    asyncio.run(scenario())


def test_help_scrolls_with_keys_and_lists_every_app_wide_key(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("question_mark")
            await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            source = app.screen.query_one("Markdown").source
            everywhere = source.split("## Everywhere")[1]
            for key in ("| v |", "| ctrl+s |", "| L (MoE pane", "| u / ctrl+z |", "| m |", "| ctrl+p |", "Tab"):
                assert key in everywhere, key
            scroller = app.screen.query_one("VerticalScroll")
            await pilot.pause(0.2)
            assert scroller.max_scroll_y > 0
            await pilot.press("down")
            assert scroller.scroll_y == 1
            await pilot.press("pagedown")
            assert scroller.scroll_y > 2
            await pilot.press("end")
            assert scroller.scroll_y == scroller.max_scroll_y
            await pilot.press("home")
            assert scroller.scroll_y == 0

    asyncio.run(scenario())


async def run_palette_command(pilot, app, text: str) -> None:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
    await pilot.press(*text)
    await pilot.pause(0.5)  # the palette searches its providers asynchronously
    await pilot.press("enter")
    await until(pilot, lambda: type(app.screen).__name__ != "CommandPalette")


def test_the_palette_offers_app_commands_and_saves_screenshots_without_a_downloads_folder(
    tiny_model_dirs, tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            titles = [command.title for command in app.get_system_commands(app.screen)]
            for expected in ("Pane: Attention", "Preset: greedy", "Theme: dark / light", "Save session…", "Compare…"):
                assert expected in titles
            assert "Model: pick another model…" in titles
            await run_palette_command(pilot, app, "Pane: Attention")
            assert app.query_one("#panes").active == "attention"
            await run_palette_command(pilot, app, "Preset: greedy")
            await settled(pilot, app)
            assert app.view.config.temperature == 0
            await run_palette_command(pilot, app, "screenshot")
            folder = tmp_path / "llmscope-screenshots"
            await until(pilot, lambda: folder.is_dir() and any(folder.glob("*.svg")))
            assert not (tmp_path / "Downloads").exists()

    asyncio.run(scenario())


def test_the_model_picker_lists_the_registry_and_switches_model(tiny_model_dirs):
    from llmscope.registry import list_models

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("m")
            await until(pilot, lambda: type(app.screen).__name__ == "ModelPickerScreen")
            options = app.screen.query_one("#model-list")
            listed = [options.get_option_at_index(i).id for i in range(options.option_count)]
            assert listed == [entry.name for entry in list_models()]
            await pilot.press("escape")
            await until(pilot, lambda: type(app.screen).__name__ != "ModelPickerScreen")
            await pilot.press("m")
            await until(pilot, lambda: type(app.screen).__name__ == "ModelPickerScreen")
            field = app.screen.query_one("#model-path")
            field.focus()
            field.value = str(tiny_model_dirs["llama-gqa"])
            await pilot.press("enter")
            await until(pilot, lambda: app.controller is not None and app.controller.engine.info.num_kv_heads == 2)
            assert app.model_label == str(tiny_model_dirs["llama-gqa"])
            await until(pilot, lambda: app.view is not None and app.view.info.num_kv_heads == 2)

    asyncio.run(scenario())
