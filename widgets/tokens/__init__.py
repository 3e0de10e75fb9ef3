"""The tokenizer inspector pane: token chips, byte view and counts."""
