"""`python -m llmscope` runs the command line (the same as the `llmscope` script)."""

from llmscope.cli.main import main

main()
