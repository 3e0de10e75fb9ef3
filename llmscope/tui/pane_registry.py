"""The playground's panes, listed once: tab key, hotkey, title, widget id and class.

Layout, the 1–6 keys, help titles, loading notices and the data each pane receives all come from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.kv.pane import KVCachePane
from llmscope.widgets.lens.pane import LayersPane
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.pane import Pane
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.tokens.pane import TokenInspector


@dataclass(frozen=True)
class PaneSpec:
    """One tab of the playground."""

    key: str
    """Tab id, the name used by demo scripts, and the attribute of `PaneContents` it draws."""
    hotkey: str
    title: str
    widget_id: str
    widget_type: type[Pane]
    follows_steps: bool = True
    """True when the pane draws each step's record (every pane now: the tokens pane shows the run)."""

    @property
    def tab_label(self) -> str:
        return f"{self.hotkey} {self.title}"


PANES: tuple[PaneSpec, ...] = (
    PaneSpec("tokens", "1", "Tokens", "tokens-pane", TokenInspector),
    PaneSpec("logits", "2", "Logits & sampler", "sampler-table", SamplerTable),
    PaneSpec("attention", "3", "Attention", "attention-pane", AttentionPane),
    PaneSpec("kv", "4", "KV cache", "kv-pane", KVCachePane),
    PaneSpec("moe", "5", "MoE routing", "moe-pane", MoERoutingPane),
    PaneSpec("lens", "6", "Layers", "lens-pane", LayersPane),
)
PANE_BY_KEY: dict[str, PaneSpec] = {spec.key: spec for spec in PANES}

PANE_BINDINGS: list[Binding] = [
    Binding(spec.hotkey, f"pane('{spec.key}')", spec.title.split(" ")[0], show=False) for spec in PANES
]
"""The 1–6 keys that switch tabs."""
