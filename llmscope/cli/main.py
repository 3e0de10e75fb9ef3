"""The `llmscope` command line: the typer app and its entry point; each command group lives in its own module.

A command's module is imported only when that command runs (or its own --help is asked for): `llmscope
--help` lists every command from COMMANDS below, and `tokenize` loads the tokenizer module alone, never the
modules behind generate or compare (numpy, the sampler, the session format). torch and transformers are
imported only inside the commands that run a model. Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import importlib
import os
from difflib import get_close_matches
from typing import Any

import typer
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

from llmscope.cli import playground
from llmscope.cli.common import DEBUG, err, unexpected_error_line

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": (
        "llmscope.cli.generate",
        "Generate STEPS tokens and show, per step, the candidates, each sampler stage's survivors, entropy, KV bytes "
        "and time.",
    ),
    "lens": (
        "llmscope.cli.lens",
        "Show, layer by layer, which next token the residual stream already points to (final norm + unembedding).",
    ),
    "replay": (
        "llmscope.cli.replay",
        "Replay a recorded session without the model: every step re-sampled from its recorded logits and knobs.",
    ),
    "tokenize": (
        "llmscope.cli.lookup",
        "Show each token with its id, vocabulary piece (Ġ, Ċ, ▁, <0xXX>), bytes, character offsets and special flag.",
    ),
    "models": ("llmscope.cli.lookup", "List the models llmscope can load offline and whether each is ready."),
    "kv-calc": (
        "llmscope.cli.lookup",
        "KV-cache size: 2 × layers × kv_heads × head_dim × tokens × batch × bytes, with what-if rows.",
    ),
    "compare": (
        "llmscope.cli.compare",
        "Run two lanes side by side (prompts, knobs, chat template or models differ) and show where they diverge.",
    ),
    "demo": (
        "llmscope.cli.demo",
        "Play a demo script: space or → advances, ← goes back. A script with an error is rejected before anything "
        "runs.",
    ),
    "serve": (
        "llmscope.cli.demo",
        "Serve the playground to a web browser (textual-serve): only the printed URL, with its token, opens it.",
    ),
}
"""Command name → (the module whose register() adds it, its summary as `llmscope --help` lists it); a test
checks each summary against the command's own docstring."""


class LazyCommands(TyperGroup):
    """A typer group that imports a command's module on first use; the top-level help reads COMMANDS instead."""

    listing = False
    """True while the group's own help is drawn: commands not yet loaded are listed by their summary."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in COMMANDS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return self.commands.get(cmd_name)
        module_name, summary = COMMANDS[cmd_name]
        if self.listing:
            return TyperCommand(name=cmd_name, help=summary)
        commands = typer.Typer()
        importlib.import_module(module_name).register(commands)
        for name, command in typer.main.get_group(commands).commands.items():
            self.add_command(command, name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Click's lookup; a typo is answered with the closest names of every command, loaded or not."""
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as error:
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                error.message = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    name="llmscope",
    cls=LazyCommands,
    help="A terminal microscope for language models: tokens, attention, logits, sampler stages, KV cache, MoE routing.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
playground.register(app)  # the no-command callback (opens the playground) and `tui`


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
