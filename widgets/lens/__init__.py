"""The Layers pane: the logit lens, each layer's next-token guess for every step."""
