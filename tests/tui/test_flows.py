"""The headline flows walked as a user walks them (issue 12): help from any focus, knobs, numbering, palette."""

from __future__ import annotations

import asyncio

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
