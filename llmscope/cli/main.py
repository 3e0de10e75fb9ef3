"""The `llmscope` command line: the typer app and its entry point; each command group lives in its own module.

torch and transformers are imported only inside the commands that run a model, so `--help`,
`models` and `kv-calc` answer at once. Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import os

import typer

from llmscope.cli import compare, demo, generate, lens, lookup, playground, replay
from llmscope.cli.common import DEBUG, err, unexpected_error_line

app = typer.Typer(
    name="llmscope",
    help="A terminal microscope for language models: tokens, attention, logits, sampler stages, KV cache, MoE routing.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command_group in (playground, generate, lens, replay, lookup, compare, demo):
    command_group.register(app)


def main() -> None:
    """Console-script entry point; llmscope never reaches a model hub, so the HF libraries run offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app()
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line and exit 2, never a traceback
        if DEBUG.enabled:
            raise
        err.print(f"[bold red]error:[/] {unexpected_error_line(error)}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
