"""`llmscope compare … --tui`: the playground opened directly on the compare screen (`v` is the app's own way in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmscope.compare.presets import LaneSpec
from llmscope.tui.compare_screen import CompareScreen, FactoryFor

if TYPE_CHECKING:
    from llmscope.tui.app import LLMScopeApp


def launch_compare_tui(
    specs: tuple[LaneSpec, LaneSpec],
    *,
    device: str = "auto",
    steps: int = 1,
    experiment: str | None = None,
    placement: Mapping[str, Any] | None = None,
) -> None:
    """`llmscope compare … --tui`: the playground on lane A's model, opened directly on the compare screen."""
    compare_app(specs, device=device, steps=steps, experiment=experiment, placement=placement).run()


def compare_app(
    specs: tuple[LaneSpec, LaneSpec],
    *,
    device: str = "auto",
    steps: int = 1,
    experiment: str | None = None,
    deterministic: bool = False,
    factory_for: FactoryFor | None = None,
    placement: Mapping[str, Any] | None = None,
) -> LLMScopeApp:
    """An LLMScopeApp that pushes the compare screen once its first frame is up (escape shows the playground)."""
    from llmscope.tui.app import LLMScopeApp
    from llmscope.tui.engine_factory import hf_engine_factory

    make_factory: FactoryFor = factory_for or (lambda model: hf_engine_factory(model, device, placement=placement))

    class CompareApp(LLMScopeApp):
        def on_ready(self) -> None:
            self.push_screen(CompareScreen(specs, factory_for=make_factory, initial_steps=steps, experiment=experiment))

    lane_a = specs[0]
    return CompareApp(
        make_factory(lane_a.model),
        model_label=lane_a.model,
        prompt=lane_a.prompt,
        chat=lane_a.chat,
        deterministic=deterministic,
    )
