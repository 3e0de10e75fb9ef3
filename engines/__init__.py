"""Model-facing code (torch, transformers); never imports Textual or Rich."""

import os

# llmscope never downloads: every hub library call must stay offline and quiet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
