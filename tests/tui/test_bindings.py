"""Every key the footer shows or a help screen lists does something, in every pane (pilot, tiny models).

For each pane in turn the test focuses it and collects its keys: every binding the pane's llmscope classes
declare (what its `?` help lists) and every app binding active there that the footer shows or the app declares.
Each key first gets the state it needs (a rewind needs steps, `g` needs the zoom, page keys need a long prompt,
thumbnail height needs the prefill's matrix), must then be active (`active_bindings` honours `check_action`),
and pressing it must change something a user can observe: a screen cell's text or style, the focus, the screen
stack or the model; pause must stop a run early and ctrl+q must quit. App keys are walked once, in the first
pane where they are active. A key without effect fails the test with its key and pane named.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

from textual.binding import ActiveBinding
from textual.widgets import Input, Switch, TabbedContent
from textual.worker import WorkerState

from llmscope.tui import loading
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.generation.pane import GeneratedText
from llmscope.widgets.lens.pane import LayersPane
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.tokens.chip_view import TokenChipView
from llmscope.widgets.tokens.pane import TokenInspector

PROMPT_TOKENS = 110
"""A prompt this long fills pages of chips in an 80×24 terminal and leaves the tiny models (context 128) room
for the walk's steps."""


def long_prompt(app: LLMScopeApp) -> str:
    """Counting words ('0 1 2 …') up to PROMPT_TOKENS tokens with this model's tokenizer."""
    count = 1
    while len(app.controller.engine.encode(" ".join(map(str, range(count + 1))))) <= PROMPT_TOKENS:
        count += 1
    return " ".join(map(str, range(count)))


Setup = Callable[[LLMScopeApp, object], Awaitable[None]]


def advertised(active: ActiveBinding) -> bool:
    """Shown in the footer, or declared by an llmscope class (the help screens list those), or the palette key."""
    binding = active.binding
    if binding.show or binding.action == "command_palette":  # the footer shows ^p palette on its own
        return True
    for cls in type(active.node).__mro__:
        if cls.__module__.startswith("llmscope"):
            for declared in cls.__dict__.get("BINDINGS", []):
                if declared.action == binding.action and binding.key in declared.key.split(","):
                    return True
    return False


def observable(app: LLMScopeApp) -> tuple:
    """What a user can see: every cell's text and style, the screen stack, the focus and the loaded model."""
    strips = app.screen._compositor.render_strips()
    cells = "\n".join("".join(f"{segment.text}{segment.style}" for segment in strip) for strip in strips)
    return cells, app.theme, tuple(type(screen).__name__ for screen in app.screen_stack), app.focused, app.model_label


async def steady(app: LLMScopeApp, pilot) -> tuple:
    """The observable state once a further pause changes nothing (so a pending repaint is never taken for an effect)."""
    before = observable(app)
    for _ in range(20):
        await pilot.pause()
        now = observable(app)
        if now == before:
            return now
        before = now
    raise AssertionError("the screen never settled")


def busy(app: LLMScopeApp) -> bool:
    return app.run_state.running or any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)


async def settle(app: LLMScopeApp, pilot, extra: float = 0.0) -> None:
    """Wait until no worker runs, then until the messages they posted are handled and the screen is drawn."""
    deadline = time.monotonic() + 60
    while busy(app):
        assert time.monotonic() < deadline, "the app never settled"
        await asyncio.sleep(0.005)
    if extra:
        await asyncio.sleep(extra)
    await pilot.pause()
    if busy(app):  # a handler started more work (a run after its prefill, a model switch)
        await settle(app, pilot)


async def generation_between(app: LLMScopeApp, pilot, low: int, high: int) -> None:
    """A running generation of `low`..`high` tokens, not stopped, in plain mode, showing its latest step."""
    view = app.view
    if view is None or view.stop_reason or not low <= view.step_count <= high or app.query_one("#chat", Switch).value:
        app.query_one("#chat", Switch).value = False
        await settle(app, pilot, 0.2)
        app.action_start()
        await settle(app, pilot)
        while app.view.step_count < low:
            app.action_step()
            await settle(app, pilot)
        assert not app.view.stop_reason, f"the tiny model stopped early: {app.view.stop_reason}"
    if app.inspected_view is not None or app.query_one(GeneratedText).selected is not None:
        app.render_view(app.view)


async def focus_target(app: LLMScopeApp, pilot, target: str) -> None:
    """Back on the main screen, with `target` shown and focused and no notification left over."""
    while len(app.screen_stack) > 1:
        app.pop_screen()
        await pilot.pause()
    app.clear_notifications()
    if target == "generation":
        app.query_one(GeneratedText).focus()
    elif target == "knobs":
        app.query_one(TabbedContent).active = "logits"
        app.query_one("#knob-temperature", Input).focus()
    else:
        app.action_pane(target)
        if target == "kv":  # the KV pane takes no focus: its keys are the app's
            app.set_focus(None)


# ----- the state each key needs before it can have an effect ------------------------------------------------------


async def other_tab_first(app: LLMScopeApp, pilot, pane: str) -> None:
    """A tab key shows its pane: start from another tab with the generation focused."""
    tabs = app.query_one(TabbedContent)
    if tabs.active == pane:
        tabs.active = "logits" if pane != "logits" else "tokens"
    app.query_one(GeneratedText).focus()


async def in_the_prompt(app: LLMScopeApp, pilot) -> None:
    app.query_one("#prompt", Input).focus()


async def tokens_in_the_middle(app: LLMScopeApp, pilot) -> None:
    """A long prompt, a selection away from both ends, the chip view scrolled away from both ends."""
    inspector = app.query_one(TokenInspector)
    inspector.select(len(inspector.tokens) // 2)
    chips = app.query_one(TokenChipView)
    assert chips.max_scroll_y >= 2, "the tokens walk needs a prompt longer than the pane"
    chips.scroll_to(y=chips.max_scroll_y // 2, animate=False)


async def candidate_row_three(app: LLMScopeApp, pilot) -> None:
    app.query_one(SamplerTable).cursor_row = 2


def prefill_thumbnails(*, shorter: bool) -> Setup:
    """Thumbnail height acts on the prefill's many query rows: show step 0 (the prompt's matrix) in the grid;
    `shorter` starts a row below the tallest thumbnails, so that they can grow."""

    async def setup(app: LLMScopeApp, pilot) -> None:
        app.query_one(GeneratedText).action_select_edge(0)
        await settle(app, pilot)
        assert app.inspected_view is not None and app.inspected_view.viewing == 0
        if shorter:
            app.query_one(AttentionPane).action_cell_rows(-1)

    return setup


def attention_at(mode: str) -> Setup:
    """Grid or zoom on layer 1, head 1, the zoom cursor on a middle key."""

    async def setup(app: LLMScopeApp, pilot) -> None:
        pane = app.query_one(AttentionPane)
        pane.mode = mode
        pane.layer_index, pane.head = 1, 1
        if pane.shown is not None:
            pane.cursor = (pane.shown.num_query_rows - 1, pane.shown.num_keys // 2)

    return setup


def attention_zoom_binned(keys_per_column: int) -> Setup:
    """The zoom with `keys_per_column` keys in each column (2 lets '+' narrow it; 1 lets '−' widen it)."""

    async def setup(app: LLMScopeApp, pilot) -> None:
        await attention_at("zoom")(app, pilot)
        await pilot.pause()
        app.query_one(AttentionPane).keys_per_column = keys_per_column

    return setup


def moe_at(layer: int, *, scrolled: bool = False) -> Setup:
    """A token in the middle of a long context (ten from either end) on MoE layer `layer`."""

    async def setup(app: LLMScopeApp, pilot) -> None:
        pane = app.query_one(MoERoutingPane)
        if pane.routing is None:  # a dense model: the pane only offers tiny-moe
            return
        assert pane.routing.positions >= 22, "the MoE walk needs a longer context"
        pane.selected_position = pane.routing.positions // 2
        pane.selected_moe_layer = layer
        details = pane.query_one("#moe-details")
        details.scroll_to(y=details.max_scroll_y // 2 if scrolled else 0, animate=False)
        assert not scrolled or details.max_scroll_y > 1, "the MoE details must be taller than the pane"

    return setup


async def lens_in_the_middle(app: LLMScopeApp, pilot) -> None:
    """The logit lens captured for three steps or more, the cursor on a middle layer of the second step."""
    engine = app.controller.engine
    if not engine.capture.logit_lens:  # `l` may have turned it off
        engine.set_capture(dataclasses.replace(engine.capture, logit_lens=True))
    pane = app.query_one(LayersPane)
    while pane.data is None or len(pane.data.lenses) < 3:
        app.action_step()
        await settle(app, pilot)
    pane.cursor_layer, pane.cursor_column = pane.data.lenses[0].num_rows // 2, 1
    pane.action_move(0, 0)


async def lens_details_scrolled(app: LLMScopeApp, pilot) -> None:
    """The Layers pane's candidate list scrolled to its end (shift+up then has somewhere to go)."""
    details = app.query_one(LayersPane).query_one("#lens-details")
    assert details.max_scroll_y >= 1, "the lens details must be taller than their box"
    details.scroll_end(animate=False, immediate=True)


STATE: dict[str, Setup] = {
    "leave_field": in_the_prompt,
    **{
        f"pane('{pane}')": (lambda app, pilot, pane=pane: other_tab_first(app, pilot, pane))
        for pane in ("tokens", "logits", "attention", "kv", "moe", "lens")
    },
    "select_previous": tokens_in_the_middle,
    "select_next": tokens_in_the_middle,
    "select_row(-1)": tokens_in_the_middle,
    "select_row(1)": tokens_in_the_middle,
    "select_first": tokens_in_the_middle,
    "select_last": tokens_in_the_middle,
    "page(-1)": tokens_in_the_middle,
    "page(1)": tokens_in_the_middle,
    "cursor_up": candidate_row_three,
    "cursor_down": candidate_row_three,
    "cursor_first": candidate_row_three,
    "pick": candidate_row_three,
    "grid": attention_at("zoom"),
    "key_edge(0)": attention_at("zoom"),
    "key_edge(1)": attention_at("zoom"),
    "zoom_keys(1)": attention_zoom_binned(2),
    "zoom_keys(-1)": attention_zoom_binned(1),
    "page_keys(-1)": attention_at("zoom"),
    "page_keys(1)": attention_at("zoom"),
    "cell_rows(1)": prefill_thumbnails(shorter=True),
    "cell_rows(-1)": prefill_thumbnails(shorter=False),
    "scroll_details(-4)": moe_at(0, scrolled=True),
    "move(0, -1)": moe_at(1),
    "move(0, 1)": moe_at(0),
    "scroll_details(-3)": lens_details_scrolled,
}
"""Key action → what must be true before pressing it (an action missing here needs only a few generated steps)."""
PANE_STATE: dict[str, Setup] = {"attention": attention_at("grid"), "moe": moe_at(0), "lens": lens_in_the_middle}
"""The default state of a pane's own keys."""


async def press_and_check(app: LLMScopeApp, pilot, key: str, action: str) -> bool:
    """Press `key` and tell whether anything a user can observe changed (pause and quit: whether they stopped)."""
    if action == "pause":  # only a running generation can pause: slow its steps so the run is caught running
        controller = app.controller
        real_step = controller.step

        def slow_step():
            time.sleep(0.05)
            return real_step()

        controller.step = slow_step
        first = app.view.step_count
        app.action_run()
        while app.view.step_count < first + 2:
            await asyncio.sleep(0.005)
        await pilot.press(key)
        await settle(app, pilot)
        del controller.step
        return app.view.step_count < first + 16 and "Paused" in str(app.query_one("#message").render())
    if action == "quit":
        await pilot.press(key)
        await pilot.pause()
        return not app.is_running
    before = await steady(app, pilot)
    await pilot.press(key)
    await settle(app, pilot, 0.3 if action == "toggle_chat" else 0.0)
    return observable(app) != before


def declared_keys(node: object) -> list[tuple[str, str]]:
    """(key, action) of every binding an llmscope class of `node` declares: what its `?` help lists."""
    keys = []
    for cls in type(node).__mro__:
        if cls.__module__.startswith("llmscope"):
            for binding in cls.__dict__.get("BINDINGS", []):
                keys += [(key, binding.action) for key in binding.key.split(",")]
    return keys


async def walk(
    app: LLMScopeApp,
    pilot,
    target: str,
    steps: tuple[int, int],
    walked: set,
    failures: list,
    *,
    skip: tuple[str, ...] = ("load_moe",),
) -> None:
    """Press every key the focused pane declares and every advertised app key active here, each from its state.

    A pane key must be active once its state is set (check_action may hide it elsewhere); an app key counts
    where it is active, and is walked once across panes.
    """
    await generation_between(app, pilot, *steps)
    await focus_target(app, pilot, target)
    await settle(app, pilot)
    pane = app.focused
    candidates = [(key, action, type(pane).__name__) for key, action in declared_keys(pane)] if pane else []
    for key, binding in app.screen.active_bindings.items():
        if binding.enabled and binding.node is app and advertised(binding):
            candidates.append((key, binding.binding.action, type(app).__name__))
    for key, action, owner in candidates:
        identity = (owner, key, action)
        if identity in walked or action.split("(")[0] in (*skip, "quit"):
            continue
        walked.add(identity)
        await generation_between(app, pilot, *steps)
        await focus_target(app, pilot, target)
        if target in PANE_STATE and owner != type(app).__name__:
            await PANE_STATE[target](app, pilot)
        if action in STATE:
            await STATE[action](app, pilot)
        await settle(app, pilot)
        current = app.screen.active_bindings.get(key)
        if current is None or not current.enabled or current.binding.action != action:
            now = f"{type(current.node).__name__}.{current.binding.action}" if current else "nothing"
            failures.append(f"pane {target!r}: key {key!r} ({owner}.{action}) is not active in its state ({now})")
            continue
        if not await press_and_check(app, pilot, key, action):
            failures.append(f"pane {target!r}: key {key!r} ({owner}.{action}) had no observable effect")


def make_app(directory) -> LLMScopeApp:
    return LLMScopeApp(hf_engine_factory(str(directory)), model_label=directory.name, deterministic=True)


async def ready(app: LLMScopeApp, pilot) -> None:
    while app.view is None:
        await asyncio.sleep(0.01)
    for field in app.query(Input):
        field.cursor_blink = False  # a blinking cursor would look like an effect
    await settle(app, pilot)


def test_every_advertised_key_has_an_effect_in_every_pane(tiny_model_dirs, monkeypatch):
    failures: list[str] = []
    walked: set = set()
    dense_dir = tiny_model_dirs["llama-gqa"]
    # L offers tiny-moe; here it loads the tiny dense model under that name, so both L and l can be pressed
    monkeypatch.setattr(loading, "hf_engine_factory", lambda _name: hf_engine_factory(str(dense_dir)))

    async def dense() -> None:
        app = make_app(dense_dir)
        async with app.run_test(size=(160, 48), notifications=True) as pilot:
            await ready(app, pilot)
            long_context_keys = ("load_moe", "zoom_keys", "page_keys")  # walked below, on the long prompt
            for target in ("generation", "logits", "knobs", "attention", "kv", "lens"):
                await walk(app, pilot, target, (3, 10), walked, failures, skip=long_context_keys)
            # the tokens pane's page keys need more chips than fit: run a long prompt in a small terminal
            app.query_one("#prompt", Input).value = long_prompt(app)
            app.action_start()
            await pilot.resize_terminal(80, 24)
            await settle(app, pilot, 0.3)
            await walk(app, pilot, "tokens", (3, 10), walked, failures)
            # the attention zoom's key binning and paging act when the keys outnumber its columns
            await walk(app, pilot, "attention", (3, 10), walked, failures)
            app.query_one("#prompt", Input).value = app.initial_prompt  # L reloads, which runs the prompt
            app.action_start()
            await pilot.resize_terminal(160, 48)
            await settle(app, pilot, 0.3)
            # a dense model's MoE pane has one key, L (or l), which switches the model; ctrl+q quits
            await walk(app, pilot, "moe", (3, 10), walked, failures, skip=("move", "jump", "scroll_details"))
            assert app.model_label == "tiny-moe", "L never switched the model"
            walked.add(("LLMScopeApp", "ctrl+q", "quit"))
            if not await press_and_check(app, pilot, "ctrl+q", "quit"):
                failures.append("app: key 'ctrl+q' (quit) did not quit")

    async def moe() -> None:
        app = make_app(tiny_model_dirs["mixtral"])
        async with app.run_test(size=(140, 40), notifications=True) as pilot:
            await ready(app, pilot)
            await walk(app, pilot, "moe", (20, 30), walked, failures)

    asyncio.run(dense())
    asyncio.run(moe())
    assert not failures, "\n".join(failures)
    owners = {owner for owner, _, _ in walked}
    assert {
        "GeneratedText",
        "SamplerTable",
        "KnobInput",
        "AttentionPane",
        "TokenInspector",
        "MoERoutingPane",
        "LayersPane",
    } <= owners
    app_keys = {key for owner, key, _ in walked if owner == "LLMScopeApp"}
    assert set("space r p b e escape c 1 5 6 question_mark t v ctrl+s ctrl+q".split()) <= app_keys
    assert ("MoERoutingPane", "L", "load_moe") in walked and ("MoERoutingPane", "l", "load_moe") in walked
