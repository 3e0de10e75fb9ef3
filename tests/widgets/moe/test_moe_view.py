"""MoE routing pane: renderables checked against hand-computed routing numbers; pilot tests for selection,
the dense-model message and LoadMoERequested."""

from __future__ import annotations

import asyncio

import numpy as np
from rich.console import Console
from textual import on
from textual.app import App, ComposeResult
from textual.widgets import Button, Static

from llmscope.moe_stats import load_balancing_loss
from llmscope.panes import DenseModel, MoEContent
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.moe.render import RouterDistributionView, RoutingMapView, map_layout
from llmscope.widgets.moe.routing_map import RoutingMap
from llmscope.widgets.moe.tables import ExpertLoadView, LoadBalanceView

RULE = "mixtral: softmax over experts → top-2 → renormalise"


def render(renderable: object, width: int = 80) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def tiny_routing(positions: int = 3, layers: int = 2, experts: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded routing: softmax top-2 renormalised, like Mixtral, for `layers` × `positions`."""
    generator = np.random.default_rng(3)
    logits = generator.normal(size=(layers, positions, experts)).astype(np.float32) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    chosen = np.argsort(-probs, axis=-1)[..., :2]
    kept = np.take_along_axis(probs, chosen, -1)
    return logits, chosen.astype(np.int64), (kept / kept.sum(-1, keepdims=True)).astype(np.float32)


def test_routing_map_cells_show_expert_and_weight() -> None:
    experts = np.array([[[3, 5], [0, 1]]])
    weights = np.array([[[0.62, 0.38], [0.999, 0.001]]], dtype=np.float32)
    text = render(
        RoutingMapView(experts, weights, ["The", " cat"], (7,), 8, selected_position=0, selected_layer=0, height=10),
        width=80,
    )
    lines = text.splitlines()
    assert "L7" in lines[0]
    assert "[ 3 .62  5 .38]" in lines[1]  # selected cell bracketed
    assert " 0 1.0  1 .00" in lines[2]
    assert "The" in lines[1] and "cat" in lines[2]


def test_routing_map_windows_long_sequences_around_selection() -> None:
    positions = 2000
    experts = np.zeros((3, positions, 2), dtype=np.int64)
    experts[..., 1] = 1
    weights = np.full((3, positions, 2), 0.5, dtype=np.float32)
    labels = [f"t{index}" for index in range(positions)]
    text = render(
        RoutingMapView(experts, weights, labels, (0, 1, 2), 4, selected_position=1000, selected_layer=1, height=10),
        width=80,
    )
    lines = text.splitlines()
    assert len(lines) == 10  # header, 8 token rows, footer
    rows = 8
    first = 1000 - rows // 2
    assert lines[1].lstrip().startswith(f"{first} ") and lines[8].lstrip().startswith(f"{first + rows - 1} ")
    assert f"tokens {first}–{first + rows - 1} of 2,000" in lines[9]


def test_map_layout_picks_cell_style_and_windows_layers() -> None:
    roomy = map_layout(10, 4, 2, 8, width=160, height=20, selected_position=0, selected_layer=0)
    assert roomy.mode == "weights" and roomy.columns == 4
    crowded = map_layout(10, 30, 2, 8, width=80, height=20, selected_position=0, selected_layer=29)
    assert crowded.mode == "top1" and crowded.columns < 30
    assert crowded.first_layer + crowded.columns == 30  # the selected last layer is in view
    # cell_at inverts the layout: the first cell of the second row.
    assert roomy.cell_at(roomy.label_width, 2) == (1, 0)
    assert roomy.cell_at(0, 2) is None and roomy.cell_at(roomy.label_width, 0) is None


def test_router_distribution_bars_and_weights() -> None:
    probs = np.array([0.5, 0.25, 0.125, 0.125])
    view = RouterDistributionView(
        probs, [0, 1], [2 / 3, 1 / 3], token_label=" cat", position=4, layer=2, rule=RULE, max_rows=16
    )
    lines = render(view, width=60).splitlines()
    assert "token 4" in lines[0] and "layer 2" in lines[0] and "cat" in lines[0]
    expert_rows = lines[1:5]
    assert "0.500" in expert_rows[0] and "w 0.67" in expert_rows[0] and expert_rows[0].startswith("●")
    assert "0.125" in expert_rows[3] and "w " not in expert_rows[3]
    full = expert_rows[0].count("█")
    assert expert_rows[1].count("█") == full // 2  # bars scale with probability (peak = 0.5)
    assert RULE in lines[-1]


def test_router_distribution_keeps_chosen_when_experts_are_many() -> None:
    probs = np.full(64, 0.5 / 60)
    probs[[3, 40, 41, 42]] = [0.2, 0.1, 0.1, 0.1]
    probs[63] = 0.0  # a chosen expert with the lowest probability must still be listed
    view = RouterDistributionView(
        probs / probs.sum(), [3, 63], [0.9, 0.1], token_label="x", position=0, layer=0, rule=RULE, max_rows=8
    )
    shown = view.shown_experts()
    assert 3 in shown and 63 in shown and len(shown) <= 9
    assert "more experts share" in render(view, width=70)


def test_expert_load_table_by_hand() -> None:
    # 1 layer, 4 positions, top-2, 4 experts: expert 0 in all 4 tokens, 1 in 3, 2 in 1, 3 never.
    experts = np.array([[[0, 1], [0, 1], [1, 0], [0, 2]]])
    load = np.array([[4 / 8, 3 / 8, 1 / 8, 0.0]])
    text = render(ExpertLoadView(load, (5,), top_k=2, selected_layer=0), width=80)
    row = next(line for line in text.splitlines() if line.lstrip().startswith("L5"))
    tv = 0.5 * (abs(0.5 - 0.25) + abs(0.375 - 0.25) + abs(0.125 - 0.25) + abs(0 - 0.25))
    assert f"{tv:.2f}" in row
    assert row.split()[-4:] == ["50", "38", "12", "0"]  # percentages of the 8 routing slots
    assert "1/4 = 25.0 %" in text
    assert experts.shape == (1, 4, 2)


def test_load_balance_terms_written_out() -> None:
    # 1 layer, 2 tokens, 2 experts, top-1: token 0 → p = (0.75, 0.25), token 1 → p = (0.25, 0.75).
    logits = np.log(np.array([[[0.75, 0.25], [0.25, 0.75]]], dtype=np.float64))
    balance = load_balancing_loss(logits, experts_per_token=1, num_experts=2, alpha=0.5)
    text = render(LoadBalanceView(balance, selected_layer=0, layer_indices=(3,)), width=100)
    # f = (0.5, 0.5), P = (0.5, 0.5): Σ f·P = 0.5, L = 0.5 × 2 × 0.5 = 0.5 = α·k (balanced).
    assert "L = 0.5 × 2 × 0.5000 = 0.5" in text
    assert "α = 0.5 (router_aux_loss_coef) · N = 2 experts · k = 1" in text
    assert "(1.00× balanced)" in text
    assert "pooling hides" not in text


def test_load_balance_flags_imbalance_hidden_by_pooling() -> None:
    strong = 20.0
    logits = np.stack([np.tile([strong, 0.0], (4, 1)), np.tile([0.0, strong], (4, 1))])
    balance = load_balancing_loss(logits, experts_per_token=1, num_experts=2, alpha=1.0)
    text = render(LoadBalanceView(balance, selected_layer=0, layer_indices=(1, 3)), width=120)
    assert "All layers: 1.00× balanced, yet layer 1 alone is 2.00×" in text


class MoEApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.selections: list[tuple[int, int]] = []
        self.load_requests = 0

    def compose(self) -> ComposeResult:
        yield MoERoutingPane()

    @on(MoERoutingPane.Selected)
    def record_selection(self, message: MoERoutingPane.Selected) -> None:
        self.selections.append((message.position, message.layer))

    def on_moe_routing_pane_load_moe_requested(self, _message: MoERoutingPane.LoadMoERequested) -> None:
        self.load_requests += 1


def show_tiny(pane: MoERoutingPane, positions: int = 3) -> None:
    logits, experts, weights = tiny_routing(positions=positions)
    pane.content = MoEContent(
        logits=logits,
        experts=experts,
        weights=weights,
        token_labels=tuple(f"w{i}" for i in range(positions)),
        layer_indices=(1, 3),
        num_experts=4,
        experts_per_token=2,
        alpha=0.01,
        rule=RULE,
    )


def test_arrow_keys_move_selection_and_post_selected() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(MoERoutingPane)
            show_tiny(pane)
            pane.focus()
            await pilot.pause()
            assert (pane.selected_position, pane.selected_moe_layer) == (2, 0)  # follows the newest token
            await pilot.press("up", "right")
            await pilot.pause()
            assert (pane.selected_position, pane.selected_moe_layer) == (1, 1)
            assert app.selections == [(1, 1), (1, 3)]  # decoder-layer numbers, not MoE-layer indices
            await pilot.press("right", "down", "down", "down")  # clamped at the edges: only one real move
            await pilot.pause()
            assert (pane.selected_position, pane.selected_moe_layer) == (2, 1)
            assert app.selections[-1] == (2, 3) and len(app.selections) == 3
            distribution = render(app.query_one("#moe-distribution", Static).content, width=70)
            assert "token 2" in distribution and "layer 3" in distribution
            await pilot.press("home")
            await pilot.pause()
            assert pane.selected_position == 0

    asyncio.run(run())


def test_new_steps_follow_the_last_token_only_when_it_was_selected() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(MoERoutingPane)
            show_tiny(pane, positions=3)
            show_tiny(pane, positions=4)
            await pilot.pause()
            assert pane.selected_position == 3
            pane.selected_position = 1
            show_tiny(pane, positions=5)
            await pilot.pause()
            assert pane.selected_position == 1

    asyncio.run(run())


def test_click_on_map_cell_selects_it() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(MoERoutingPane)
            show_tiny(pane)
            await pilot.pause()
            routing_map = app.query_one(RoutingMap)
            layout = routing_map.view.layout(routing_map.size.width)
            # Row 1 is token 0; the second layer's cell starts one cell width after the first.
            await pilot.click(RoutingMap, offset=(layout.label_width + layout.cell_width + 2, 1))
            await pilot.pause()
            assert (pane.selected_position, pane.selected_moe_layer) == (0, 1)
            assert app.selections == [(0, 3)]

    asyncio.run(run())


def test_dense_model_message_and_load_request() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(MoERoutingPane)
            pane.content = DenseModel("SmolLM2-135M")
            pane.focus()
            await pilot.pause()
            assert pane.mode == "dense" and pane.has_class("-message")
            message = str(app.query_one("#moe-message", Static).content)
            assert "SmolLM2-135M is a dense model" in message and "tiny-moe" in message
            await pilot.press("down")  # no routing: moving does nothing and posts nothing
            await pilot.press("l")
            await pilot.pause()
            assert app.load_requests == 1 and app.selections == []
            await pilot.click(Button)
            await pilot.pause()
            assert app.load_requests == 2
            show_tiny(pane)
            pane.focus()
            await pilot.pause()
            await pilot.press("l")  # the key is only live in the dense message
            await pilot.pause()
            assert app.load_requests == 2 and not pane.has_class("-message")

    asyncio.run(run())


def test_unavailable_reason_is_shown() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(MoERoutingPane)
            pane.show_unavailable("Router capture is switched off.")
            await pilot.pause()
            assert pane.mode == "unavailable"
            assert "Router capture is switched off." in str(app.query_one("#moe-message", Static).content)
            assert not app.query_one(Button).display

    asyncio.run(run())


def test_wide_layout_puts_details_beside_the_map() -> None:
    async def run() -> None:
        app = MoEApp()
        async with app.run_test(size=(160, 48)) as pilot:
            pane = app.query_one(MoERoutingPane)
            show_tiny(pane)
            await pilot.pause()
            assert pane.has_class("-wide")
            routing_map, details = app.query_one(RoutingMap), app.query_one("#moe-details")
            assert routing_map.region.y == details.region.y and routing_map.region.x < details.region.x

    asyncio.run(run())
