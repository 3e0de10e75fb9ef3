"""The installed stack: no deprecation warnings from our own calls, and model loads that never overlap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from llmscope.engines.hf import HFEngine
from llmscope.engines.loading import MODEL_LOAD_LOCK


def test_a_step_raises_no_future_or_deprecation_warning(tiny_model_dirs):
    """transformers renames arguments (past_key_values → cache); our calls must use the locked version's names."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
        trace = engine.prefill([5, 6, 7])
        engine.step(int(np.argmax(trace.logits)))
        engine.truncate(3)
        engine.step(8)


def test_two_loads_started_at_once_both_succeed():
    """Loads are serialised: two threads loading different models at the same moment both get working models."""
    sequential = {name: HFEngine.load(name).prefill([1, 2, 3]).logits for name in ("tiny-dense", "tiny-moe")}
    barrier = threading.Barrier(2)
    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def load(name: str) -> None:
        try:
            barrier.wait()
            results[name] = HFEngine.load(name).prefill([1, 2, 3]).logits
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(name,)) for name in sequential]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for name, logits in sequential.items():
        np.testing.assert_array_equal(results[name], logits)


def test_the_load_lock_is_reentrant_and_shared():
    """A load that converts first takes the lock twice on one thread; another thread waits for it."""
    with MODEL_LOAD_LOCK, MODEL_LOAD_LOCK:
        acquired_elsewhere: list[bool] = []
        thread = threading.Thread(target=lambda: acquired_elsewhere.append(MODEL_LOAD_LOCK.acquire(timeout=0.2)))
        thread.start()
        thread.join()
    assert acquired_elsewhere == [False]


@pytest.mark.smollm
def test_generate_prints_no_warning_of_any_kind(smollm2_dir):
    """The README's first command on the default model: stderr holds only our own progress line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, "-m", "llmscope", "generate", "The capital of France is", "--steps", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "warn" not in result.stderr.lower(), result.stderr
    assert result.stderr.strip().splitlines() == ["Loading smollm2 on cpu (float32)…"], result.stderr
