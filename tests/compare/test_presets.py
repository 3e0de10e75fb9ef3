"""Compare's ready-made experiments keep their promise whatever lane A holds (issue 12)."""

from __future__ import annotations

import pytest

from llmscope.compare.presets import LaneSpec, experiment_lanes
from llmscope.sampler import SamplerConfig


@pytest.mark.parametrize("temperature", [0.0, 0.2, 0.7, 1.0, 1.2, 1.5, 2.0, 4.8])
def test_hotter_makes_lane_b_hotter_than_lane_a(temperature):
    base = LaneSpec(model="m", prompt="The capital of France is", config=SamplerConfig(temperature=temperature, seed=3))
    same, hotter = experiment_lanes("hotter", base)
    assert same == base
    assert hotter.config.temperature > temperature and hotter.config.seed == 3
    assert hotter.config.with_changes(temperature=temperature) == base.config  # only the temperature differs
