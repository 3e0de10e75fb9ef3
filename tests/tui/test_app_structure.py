"""The App is assembled from mixins: every `@on` handler they declare must reach Textual's dispatch."""

from __future__ import annotations

from llmscope.tui.app import LLMScopeApp


def test_every_decorated_handler_in_the_app_and_its_mixins_is_registered():
    """Textual registers `@on` handlers per MessagePump class; one on a plain mixin would silently never run."""
    declared = 0
    for cls in LLMScopeApp.__mro__:
        registered = {
            method for handlers in vars(cls).get("_decorated_handlers", {}).values() for method, _ in handlers
        }
        for name, value in vars(cls).items():
            if callable(value) and hasattr(value, "_textual_on"):
                declared += 1
                assert value in registered, f"{cls.__name__}.{name} is decorated with @on but never dispatched"
    assert declared >= 6  # the check is live: the prompt, tab, knob and MoE handlers are among them
