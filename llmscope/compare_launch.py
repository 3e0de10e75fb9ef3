"""Ways into the compare screen: `v` in the playground, and `llmscope compare … --tui`."""

from __future__ import annotations

from typing import Any

from llmscope.compare_presets import LaneSpec, experiment_lanes
from llmscope.compare_screen import CompareScreen, EngineFactory, FactoryFor


def open_from_app(app: Any) -> None:
    """The main app's `v`: lane A = its prompt, chat mode and knobs; lane B = the same at a higher temperature."""
    if isinstance(app.screen, CompareScreen):
        return
    from textual.widgets import Input, Switch

    from llmscope.app import hf_engine_factory
    from llmscope.sampler import SamplerConfig

    prompt = app.query_one("#prompt", Input).value or "The capital of France is"
    chat = app.query_one("#chat", Switch).value
    config = app.view.config if app.view is not None else (
        app.controller.generation.config if app.controller is not None else SamplerConfig())
    base = LaneSpec(model=app.model_label, prompt=prompt, chat=chat, config=config)
    own_model, own_factory = app.model_label, app.engine_factory

    def factory_for(model: str) -> EngineFactory:
        return own_factory if model == own_model else hf_engine_factory(model)

    steps = app.view.step_count if app.view is not None else 1
    app.push_screen(CompareScreen(experiment_lanes("hotter", base), factory_for=factory_for, initial_steps=steps,
                                  experiment="hotter"))


def launch_compare_tui(specs: tuple[LaneSpec, LaneSpec], *, device: str = "auto", steps: int = 1,
                       experiment: str | None = None) -> None:
    """`llmscope compare … --tui`: the playground on lane A's model, opened directly on the compare screen."""
    compare_app(specs, device=device, steps=steps, experiment=experiment).run()


def compare_app(specs: tuple[LaneSpec, LaneSpec], *, device: str = "auto", steps: int = 1, experiment: str | None = None,
                deterministic: bool = False, factory_for: FactoryFor | None = None) -> Any:
    """An LLMScopeApp that pushes the compare screen once its first frame is up (escape shows the playground)."""
    from llmscope.app import LLMScopeApp, hf_engine_factory

    make_factory: FactoryFor = factory_for or (lambda model: hf_engine_factory(model, device))

    class CompareApp(LLMScopeApp):
        def on_ready(self) -> None:
            self.push_screen(CompareScreen(specs, factory_for=make_factory, initial_steps=steps, experiment=experiment))

    lane_a = specs[0]
    return CompareApp(make_factory(lane_a.model), model_label=lane_a.model, prompt=lane_a.prompt, chat=lane_a.chat,
                      deterministic=deterministic)
