"""The TUI's controller: views carry what the panes need, consistent with the engine's own traces."""

from __future__ import annotations

import numpy as np

from llmscope.engines.hf import HFEngine
from llmscope.live import LiveController, visible_label
from llmscope.sampler import SamplerConfig


def test_view_after_steps_and_rewind(tiny_model_dirs):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["mixtral"])), SamplerConfig(temperature=0.8, seed=2))
    view = controller.start("Hello, how are you?", chat=False)
    prompt_length = len(view.prompt_tokens)
    assert view.step_count == 1 and len(view.context_labels) == prompt_length
    for _ in range(3):
        view = controller.step()
    assert view.step_count == 4
    assert len(view.context_labels) == prompt_length + 3  # the newest token is not fed yet
    assert [kv.tokens for kv in view.kv_history] == [prompt_length + i for i in range(4)]
    routing = view.routing
    assert routing.experts.shape == (2, prompt_length + 3, 2)
    np.testing.assert_array_equal(routing.experts[:, -1], view.current.router.experts[:, 0])
    probability = view.sample.final_probs[view.sample.token_id]
    assert view.generated[-1][1] == probability
    assert view.sample.token_id in view.token_texts
    view = controller.rewind(1)
    assert view.step_count == 3 and len(view.context_labels) == prompt_length + 2


def test_resample_changes_the_view_without_a_forward(tiny_model_dirs):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["llama-gqa"])))
    controller.start("To be, or not to be", chat=False)
    before = controller.step()
    after = controller.resample(SamplerConfig(temperature=0))
    assert after.forward_calls == before.forward_calls == 2
    assert after.sample.greedy and after.generated[-1][0].id == int(np.argmax(after.current.logits))
    np.testing.assert_array_equal(after.current.logits, before.current.logits)


def test_what_if_rows_use_the_live_context(tiny_model_dirs):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["llama-gqa"])))
    view = controller.start("Hello world", chat=False)
    as_is = view.what_if[0][1]
    assert as_is.total_bytes == view.kv_history[-1].total_bytes  # float32 cache on CPU, same tokens


def test_visible_label():
    assert visible_label(" Paris") == "␣Paris" and visible_label("\n") == "⏎" and visible_label("") == "∅"
