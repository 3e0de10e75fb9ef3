"""The Layers pane's record from a generation's steps: every captured logit lens, or why there is none.

Kept beside the live controller (which calls it once per view) so the controller stays about stepping.
Imports no torch and no Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from llmscope.generation import Step
from llmscope.panes import LensContent, Unavailable

LENS_OFF = (
    "The logit lens is off: it runs the final norm and unembedding on every layer, which costs about 1.7× a "
    "decode step on a CPU (SmolLM2). Press l in this pane to capture it from the next step (or start with --lens)."
)
LENS_NEXT = "The logit lens is on: it is captured from the next step (space steps). Press l to turn it off again."
NO_STEP = "No step yet: the logit lens appears after the first forward pass."


def lens_content(
    steps: Sequence[Step],
    shown: int,
    token_text: Callable[[int], str],
    *,
    model_name: str,
    capturing: bool,
) -> LensContent | None:
    """Every captured lens with the visible text of each token it names; the step shown is the selected column."""
    captured = [(index, step) for index, step in enumerate(steps) if step.trace.lens is not None]
    if not captured:
        return None
    texts: dict[int, str] = {}
    for _, step in captured:
        lens = step.trace.lens
        assert lens is not None
        for token_id in {*np.unique(lens.top_ids).tolist(), step.token_id}:
            if token_id not in texts:
                texts[token_id] = token_text(int(token_id))
    before = [position for position, (index, _) in enumerate(captured) if index <= shown]
    return LensContent(
        lenses=tuple(step.trace.lens for _, step in captured if step.trace.lens is not None),
        step_indices=tuple(index for index, _ in captured),
        chosen_ids=tuple(step.token_id for _, step in captured),
        token_texts=texts,
        selected=before[-1] if before else 0,
        model_name=model_name,
        capturing=capturing,
    )


def lens_pane(
    content: LensContent | None, *, stepped: bool, model_name: str, refusal: str | None, capturing: bool = False
) -> LensContent | Unavailable:
    """The Layers pane's record, or why it has none: no step yet, a refused model, or the capture off (or just on)."""
    if content is not None:
        return content
    if not stepped:
        return Unavailable(NO_STEP)
    if refusal:
        return Unavailable(f"No logit lens for {model_name}: {refusal}.")
    return Unavailable(LENS_NEXT if capturing else LENS_OFF)
