"""The pane contract's widget half: a pane draws its `content`, a plain-data record or the reason it has none.

Every pane inherits `Pane[DataT]`: the App assigns `pane.content = record` (built once by the worker, see
`llmscope.panes`), the watcher switches the `-unavailable` class and calls the pane's own `draw(record)` or
`draw_unavailable(reason)`. No pane has a `show()` signature to remember, and "nothing to show" lives here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from textual.reactive import reactive
from textual.widget import Widget

from llmscope.panes import Unavailable

DataT = TypeVar("DataT")


class Pane(Widget, Generic[DataT]):
    """Base of every pane: one reactive `content`; subclasses implement `draw` and, if they need to, `draw_unavailable`."""

    WAITING: ClassVar[str] = "Nothing to show yet."
    """The reason shown before the App assigns any content."""

    PARTS: ClassVar[dict[str, str]] = {}
    """Named parts of the pane (name → CSS selector) that a demo step can scroll into view with `show`."""

    content: reactive[Any] = reactive(None, always_update=True, init=False)
    """The record this pane draws (DataT), or Unavailable(reason)."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(Pane.content, Unavailable(self.WAITING))

    @property
    def data(self) -> DataT | None:
        """The record shown, or None while the pane says why it has nothing."""
        content = self.content
        return None if isinstance(content, Unavailable) else content

    @property
    def unavailable_reason(self) -> str | None:
        """Why the pane has nothing to show, or None while it shows a record."""
        content = self.content
        return content.reason if isinstance(content, Unavailable) else None

    def show_unavailable(self, reason: str) -> None:
        """Shorthand for `content = Unavailable(reason)`."""
        self.content = Unavailable(reason)

    def show_part(self, part: str) -> None:
        """Scroll the named part to the top of the pane's view (KeyError for a part the pane does not have)."""
        self.query_one(self.PARTS[part]).scroll_visible(top=True, animate=False, immediate=True)

    def on_mount(self) -> None:
        self._apply(self.content)

    def watch_content(self, content: DataT | Unavailable) -> None:
        if self.is_mounted:
            self._apply(content)

    def _apply(self, content: DataT | Unavailable) -> None:
        unavailable = isinstance(content, Unavailable)
        self.set_class(unavailable, "-unavailable")
        if isinstance(content, Unavailable):
            self.draw_unavailable(content.reason)
        else:
            self.draw(content)

    def draw(self, data: DataT) -> None:
        """Draw a record (called on the UI thread whenever content changes to one)."""
        raise NotImplementedError

    def draw_unavailable(self, reason: str) -> None:
        """Say why there is nothing to show; by default the pane's `.pane-unavailable` child shows the reason."""
        for notice in self.query(".pane-unavailable"):
            notice.update(reason)  # type: ignore[attr-defined]  # Static children, by convention
        self.refresh()
