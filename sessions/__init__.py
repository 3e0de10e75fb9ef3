"""Recorded sessions shipped with llmscope (installed as `llmscope.sessions`); `index.json` lists them.

Open one with `llmscope replay NAME`; regenerate them with `python sessions/record.py`.
"""
