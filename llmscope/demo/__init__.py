"""Demos: the TOML script format, its captions filled from the run, and the step player."""
