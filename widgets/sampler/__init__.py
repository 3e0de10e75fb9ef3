"""The logits & sampler pane: candidates through every sampler stage, and the knobs."""
