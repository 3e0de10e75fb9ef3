"""`llmscope demo` and `llmscope serve`: scripted walk-throughs, presenter mode, the app in a browser."""

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add the demo and serve commands to the CLI app."""
    from llmscope.cli.common import (
        DeviceOption,
        OverwriteOption,
        check_record_path,
        check_save_path,
        err,
        fail,
        markup_safe,
        out,
        user_errors,
    )

    @app.command()
    def demo(
        script: Annotated[str | None, typer.Argument(help="A demo .toml file or a shipped demo name.")] = None,
        list_demos: Annotated[bool, typer.Option("--list", help="List the shipped demos.")] = False,
        present: Annotated[
            bool, typer.Option("--present", help="Presenter mode: high contrast, large figures, captions, no chrome.")
        ] = False,
        auto: Annotated[float | None, typer.Option("--auto", min=0.5, help="Advance on its own every SECONDS.")] = None,
        record: Annotated[
            Path | None, typer.Option("--record", help="Save the session as it plays (.llmscope).")
        ] = None,
        export_svg: Annotated[
            Path | None, typer.Option("--export-svg", help="Run headless and write one SVG per step into DIR.")
        ] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Override the model the script names.")] = None,
        size: Annotated[str, typer.Option(help="Screenshot size for --export-svg, WIDTHxHEIGHT.")] = "160x48",
        device: DeviceOption = "auto",
        overwrite: OverwriteOption = False,
    ) -> None:
        """Play a demo script: space or → advances, ← goes back. A script with an error is rejected before anything runs."""
        from llmscope.demo.script import DemoScriptError, find_demo, shipped_demos

        if list_demos:
            table = Table(box=None, padding=(0, 2))
            for column in ("name", "title", "description"):
                table.add_column(column, style="bold" if column == "name" else None, no_wrap=column == "name")
            for name, title, description in shipped_demos():
                table.add_row(name, title, description)
            out.print(table)
            out.print("\n[dim]Play one with: llmscope demo NAME (add --present for a talk).[/]")
            return
        if script is None:
            fail("give a demo file or a shipped demo name (llmscope demo --list shows them)")
        try:
            parsed = find_demo(script)
        except DemoScriptError as error:
            fail(str(error))
        model_name = model or parsed.model
        check_record_path(record, overwrite)
        if export_svg is not None:
            try:
                export_svg.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                fail(f"--export-svg {export_svg}: cannot make the folder ({error.strerror or error})")
            check_save_path(export_svg / "01.svg", "--export-svg")
        from llmscope.registry import resolve

        user_errors(lambda: resolve(model_name))
        from llmscope.tui.app import LLMScopeApp
        from llmscope.tui.engine_factory import hf_engine_factory

        factory = hf_engine_factory(model_name, device, logit_lens=parsed.needs_lens)  # a lens slide needs it on
        if export_svg is not None:
            from llmscope.tui.demo_export import DemoExportError, export_demo_svgs

            width, _, height = size.partition("x")
            if not (width.isdigit() and height.isdigit()):
                fail(f"--size {size}: expected WIDTHxHEIGHT, for example 160x48")
            try:
                paths = export_demo_svgs(
                    parsed,
                    factory,
                    export_svg,
                    present=present,
                    size=(int(width), int(height)),
                    on_step=lambda n, p: err.print(f"[dim]step {n + 1}/{len(parsed.steps)} → {markup_safe(str(p))}[/]"),
                    record_path=record,
                )
            except DemoExportError as error:
                fail(str(error))
            out.print(f"wrote {len(paths)} screenshots to {export_svg}")
            return
        LLMScopeApp(
            factory,
            model_label=model_name,
            prompt="",
            demo=parsed,
            present=present,
            auto_seconds=auto,
            record_path=record,
        ).run()

    @app.command()
    def serve(
        port: Annotated[int, typer.Option(min=1024, max=65535, help="Port to listen on.")] = 8000,
        host: Annotated[str, typer.Option(help="Interface to listen on (this machine only by default).")] = "localhost",
        public: Annotated[
            bool,
            typer.Option(
                "--public",
                help="Allow a --host other than this machine's loopback (others on the network can connect).",
            ),
        ] = False,
        max_sessions: Annotated[
            int, typer.Option(min=1, max=16, help="Browser sessions running at once (each loads its own model).")
        ] = 1,
        command: Annotated[
            str, typer.Option(help="The llmscope command to serve: tui, demo, replay or compare, with its options.")
        ] = "tui",
    ) -> None:
        """Serve the playground to a web browser (textual-serve): only the printed URL, with its token, opens it."""
        try:
            from llmscope.cli.serving import GuardedServer, is_loopback, served_argv
        except ImportError:
            fail("serving needs textual-serve: run scripts/setup.sh (or pip install textual-serve)")
        argv = user_errors(lambda: served_argv(sys.executable, command))
        if not is_loopback(host) and not public:
            fail(
                f"--host {host} listens beyond this machine: anyone who reaches the port and learns the URL can "
                "drive the app and save files as you. Add --public to do it anyway."
            )
        server = GuardedServer(argv, host=host, port=port, max_sessions=max_sessions)
        if not is_loopback(host):
            err.print(
                f"[bold yellow]warning:[/] listening on {escape(host)}: anyone on the network who has the URL "
                "below can drive the app (the token is the only lock; the connection is not encrypted)."
            )
        err.print(
            f"Serving `llmscope {escape(shlex.join(argv[3:]))}` at {server.page_url} — only this URL opens it; "
            f"{max_sessions} browser session(s) at a time; ctrl+c stops the server.",
            soft_wrap=True,
        )
        server.serve()
