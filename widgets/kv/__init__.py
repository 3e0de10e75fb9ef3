"""The KV cache pane: bytes per layer, growth, the formula and what-ifs."""
