"""Caption templates: literal text with `{name}` fields filled from the run, and nothing else.

str.format would walk attributes (`{model.__class__}`), index, convert (`!r`), nest format specs and
pad to any width (`{text:>2000000000}`); a demo script is a file people share, so captions get a
small language of their own: a field is a known name, optionally with a bounded width and alignment
(`{steps:>4}`); `{{` and `}}` are literal braces. Anything else is refused when the script loads.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["MAX_FIELDS", "MAX_TEMPLATE_CHARS", "MAX_WIDTH", "Field", "TemplateError", "parse_template", "render"]

MAX_TEMPLATE_CHARS = 2000
MAX_FIELDS = 64
MAX_WIDTH = 80
MISSING = "–"
"""Shown for a field this run has no figure for."""

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_WIDTH = re.compile(r"([<>^]?)([0-9]{1,3})\Z")


class TemplateError(ValueError):
    """A caption that is not a valid template; the message says what and where (character offset)."""


@dataclass(frozen=True)
class Field:
    """One `{name}` or `{name:>width}` field."""

    name: str
    align: str = "<"
    width: int = 0

    def fill(self, value: str) -> str:
        if len(value) >= self.width:
            return value
        return {"<": value.ljust, ">": value.rjust, "^": value.center}[self.align](self.width)


def _field(body: str, offset: int, known: Collection[str] | None) -> Field:
    name, colon, spec = body.partition(":")
    where = f"{{{body}}} at character {offset}"
    if not name:
        raise TemplateError(f"{where}: a field needs a name, such as {{steps}}")
    if "!" in name:
        raise TemplateError(f"{where}: conversions like !r are not allowed")
    if any(mark in name for mark in ".[]"):
        raise TemplateError(f"{where}: only plain field names are allowed (no attributes or indexing)")
    if not _NAME.match(name):
        raise TemplateError(f"{where}: '{name}' is not a field name")
    if known is not None and name not in known:
        raise TemplateError(f"{where}: unknown caption value {{{name}}} (known: {', '.join(sorted(known))})")
    if not colon:
        return Field(name)
    match = _WIDTH.match(spec)
    if match is None:
        raise TemplateError(f"{where}: the only format allowed is a width with an alignment, such as {{{name}:>8}}")
    width = int(match.group(2))
    if width > MAX_WIDTH:
        raise TemplateError(f"{where}: width {width} is above the limit of {MAX_WIDTH}")
    return Field(name, match.group(1) or "<", width)


def parse_template(text: str, known: Collection[str] | None = None) -> tuple[str | Field, ...]:
    """The template as literal strings and Fields; TemplateError names the first problem.

    With `known`, every field name must be one of them.
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"it is {len(text):,} characters, above the limit of {MAX_TEMPLATE_CHARS:,}")
    parts: list[str | Field] = []
    literal: list[str] = []
    position = 0
    while position < len(text):
        character = text[position]
        if character in "{}" and text[position : position + 2] == character * 2:
            literal.append(character)
            position += 2
            continue
        if character == "}":
            raise TemplateError(f"a lone '}}' at character {position} (write '}}}}' for a brace)")
        if character == "{":
            end = text.find("}", position + 1)
            nested = text.find("{", position + 1)
            if end < 0 or (0 <= nested < end):
                raise TemplateError(
                    f"the '{{' at character {position} is not closed by '}}' (write '{{{{' for a brace)"
                )
            parts.extend(["".join(literal)] if literal else [])
            literal = []
            parts.append(_field(text[position + 1 : end], position, known))
            position = end + 1
            continue
        literal.append(character)
        position += 1
    parts.extend(["".join(literal)] if literal else [])
    if sum(isinstance(part, Field) for part in parts) > MAX_FIELDS:
        raise TemplateError(f"more than {MAX_FIELDS} fields")
    return tuple(parts)


def render(template: str, values: Mapping[str, str]) -> str:
    """The template with each field replaced by its value ('–' when the run has none); literal braces unescaped."""
    return "".join(
        part if isinstance(part, str) else part.fill(values.get(part.name, MISSING))
        for part in parse_template(template)
    )
