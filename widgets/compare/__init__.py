"""The compare view: two lanes side by side with their divergence."""
