"""The attention pane: a layer × head grid and a zoom on one head."""
