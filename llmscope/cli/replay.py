"""`llmscope replay`: open a recorded session in the TUI, or print it as a table or JSON."""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from llmscope.cli.common import JsonOption, fail, markup_safe, out, user_errors, visible
from llmscope.cli.report import print_step
from llmscope.format import printable_text

if TYPE_CHECKING:
    from llmscope.session.recording import Session


def launch_replay_tui(session_path: Path) -> None:
    """Open the playground over a recorded session (no model needed); the file is checked before the screen opens."""
    from llmscope.session.files import load_session

    session = user_errors(lambda: load_session(session_path))
    try:
        from llmscope.tui.app import LLMScopeApp
    except ImportError:
        fail("the replay TUI is not wired yet: use --headless")
    from llmscope.session.replay import replay_engine_factory

    first = session.prompts[0] if session.prompts else None
    LLMScopeApp(
        replay_engine_factory(session_path, session=session),
        model_label=f"{session.model.name} (replay)",
        prompt=printable_text(first.text) if first else "",
        chat=first.chat if first else False,
    ).run()


def list_sessions(json_output: bool) -> None:
    from llmscope.session.replay import shipped_sessions

    shipped = shipped_sessions()
    if json_output:
        out.print_json(data=[{"name": s.name, "description": s.description, "path": str(s.path)} for s in shipped])
        return
    if not shipped:
        out.print("[dim]no shipped sessions are installed[/]")
        return
    table = Table(box=None, padding=(0, 2))
    table.add_column("name", style="bold")
    table.add_column("description")
    for shipped_session in shipped:
        table.add_row(shipped_session.name, shipped_session.description)
    out.print(table)
    out.print("\n[dim]Open one with: llmscope replay NAME (add --headless for a table in the terminal).[/]")


def replay(
    session_file: Annotated[
        str | None,
        typer.Argument(metavar="FILE_OR_NAME", help="A .llmscope file, or the name of a shipped session (see --list)."),
    ] = None,
    headless: Annotated[
        bool, typer.Option("--headless", help="Print the steps as tables instead of opening the playground.")
    ] = False,
    list_shipped: Annotated[bool, typer.Option("--list", help="List the sessions shipped with llmscope.")] = False,
    candidates: Annotated[int, typer.Option(min=1, max=50, help="Candidates shown per step.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Replay a recorded session without the model: every step re-sampled from its recorded logits and knobs."""
    if list_shipped:
        list_sessions(json_output)
        return
    if session_file is None:
        fail("give a session file or a shipped session name (llmscope replay --list shows them)")
    from llmscope.session.replay import find_session_file

    path = user_errors(lambda: find_session_file(session_file))
    if not headless:
        launch_replay_tui(path)
        return
    from llmscope.session.files import load_session

    session = user_errors(lambda: load_session(path))
    user_errors(lambda: replay_headless(session, path, candidates, json_output))


def replay_headless(session: "Session", path: Path, candidates: int, json_output: bool) -> None:
    """Re-enact every event, printing each step like `generate` and whether it reproduced the recording."""
    from dataclasses import asdict

    from llmscope.cli.report import generated_text, model_dict, step_dict, to_jsonable, token_dict
    from llmscope.session.recording import KnobsEvent, PromptEvent, RewindEvent
    from llmscope.session.replay import ReplayedStep, ReplayEngine, reenact

    # The table shows no attention: leave it unread (a sparse file would rebuild every row for nothing).
    engine = ReplayEngine(session, capture=dataclasses.replace(session.capture, attention=False))
    actions: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    sampled = reproduced = 0
    if not json_output:
        kept = session.logits_kept
        out.print(
            f"[bold]{markup_safe(session.title or path.name)}[/] · replay of {markup_safe(session.model.name)} · "
            f"{len(session.steps)} recorded steps · logits {'top-' + str(kept) if kept else 'full'}"
        )
        if session.attention_storage:  # lossy attention: its figures are approximate (docs/session-format.md)
            out.print(f"[dim]{markup_safe(session.attention_storage)}[/]")
        if session.description:
            out.print(f"[dim]{markup_safe(session.description)}[/]")
    generation = None
    for item, generation in reenact(session, engine):
        if isinstance(item, PromptEvent):
            runs.append({"prompt": item.text, "chat": item.chat, "prompt_ids": list(item.prompt_ids)})
            actions.append({"action": "prompt", "run": len(runs) - 1, "text": item.text, "chat": item.chat})
            if not json_output:
                out.rule(f"prompt {len(runs)}{' (chat)' if item.chat else ''} · {len(item.prompt_ids)} tokens")
                out.print(Text(printable_text(item.text), style="dim"), "\n")
        elif isinstance(item, KnobsEvent):
            actions.append({"action": "knobs", "sampler": asdict(item.config)})
            if not json_output:
                out.print(f"[cyan]knobs:[/] {item.config.describe()}")
        elif isinstance(item, RewindEvent):
            actions.append({"action": "rewind", "count": item.count})
            if not json_output:
                out.print(f"[cyan]rewind {item.count}[/]\n")
        elif isinstance(item, ReplayedStep):
            sampled += 1
            reproduced += item.reproduced
            report = step_dict(item.step.trace, item.result, candidates, engine.token_info)
            if item.step.forced:  # the user's token, not the sampler's: its own probabilities
                report |= {"p_raw": item.step.raw_probability, "p_final": item.step.probability, "forced": True}
            recorded = token_dict(engine.token_info(item.recorded.token_id))
            actions.append({"action": item.action, **report, "recorded": recorded, "reproduced": item.reproduced})
            if not json_output:
                if item.action == "resample":
                    out.print(f"[cyan]re-sample with {item.recorded.config.describe()}[/]")
                elif item.action == "force":
                    out.print(f"[cyan]force {visible(recorded['text'])} (chosen by the user instead of the sampler)[/]")
                print_step(report)
                if not item.reproduced:
                    out.print(
                        f"  [bold red]✗ differs from the recording[/], which chose {markup_safe(visible(recorded['text']))}"
                        " (following the recording)\n"
                    )
        if generation is not None and runs:
            runs[-1]["text"] = generated_text(generation)
    if json_output:
        out.print_json(
            data=to_jsonable(
                {
                    "file": str(path),
                    "title": session.title,
                    "description": session.description,
                    "model": model_dict(session.model),
                    "logits_kept": session.logits_kept,
                    "attention_storage": session.attention_storage,
                    "runs": runs,
                    "actions": actions,
                    "sampled": sampled,
                    "reproduced": reproduced,
                    "forward_calls": engine.forward_calls,
                }
            )
        )
        return
    out.rule("result")
    if runs and generation is not None:
        prompt, text = (printable_text(runs[-1][key]) for key in ("prompt", "text"))
        out.print(Text(prompt, style="dim"), Text(text, style="bold"), sep="")
    mark = "[green]all reproduced[/]" if reproduced == sampled else f"[red]{sampled - reproduced} differ[/]"
    out.print(
        f"\n[dim]{sampled} samples re-sampled from recorded logits · {reproduced}/{sampled} match the "
        f"recording · {mark}[/]"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(replay)
