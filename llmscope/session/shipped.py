"""Recorded sessions that ship with llmscope (sessions/index.json), found by name or path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

INDEX_FILE = "index.json"


@dataclass(frozen=True)
class ShippedSession:
    """A recorded session that ships with llmscope (listed in sessions/index.json)."""

    name: str
    path: Path
    description: str


def shipped_sessions_dir() -> Path | None:
    """Installed as the package `llmscope.sessions`; in a source checkout, the repo's `sessions/` folder."""
    try:
        from importlib import resources

        directory = Path(str(resources.files("llmscope.sessions")))
    except (ModuleNotFoundError, TypeError):
        directory = Path(__file__).resolve().parents[2] / "sessions"
    return directory if (directory / INDEX_FILE).is_file() else None


def shipped_sessions() -> list[ShippedSession]:
    """Every shipped session whose file is present, in index order."""
    directory = shipped_sessions_dir()
    if directory is None:
        return []
    entries = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8")).get("sessions", [])
    found = []
    for entry in entries:
        path = directory / str(entry.get("file", ""))
        if path.is_file():
            found.append(ShippedSession(str(entry.get("name", path.stem)), path, str(entry.get("description", ""))))
    return found


def find_session_file(name_or_path: str) -> Path:
    """A session file path, or the file of the shipped session with that name (FileNotFoundError otherwise)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for shipped in shipped_sessions():
        if name_or_path in (shipped.name, shipped.path.name):
            return shipped.path
    names = ", ".join(shipped.name for shipped in shipped_sessions()) or "none installed"
    raise FileNotFoundError(f"no session file or shipped session named '{name_or_path}' (shipped: {names})")
