"""The MoE routing pane: chosen experts per token and layer, router distributions, load."""
