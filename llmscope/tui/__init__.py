"""The Textual app: the playground screen, its modes (demo, recording, compare) and styles."""
