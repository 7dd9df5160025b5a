"""The recognition worker's bounded share of the CPU (lfr_eval.live._duty).

The duty-cycle arithmetic is checked on a fake clock; the bound itself on a real background
pipeline with the real dlib engine, through the inequality the design guarantees whatever the
machine's speed or load (no timed asserts): each step starts at least ``w / share`` after the
previous one began, ``w`` being that step's own duration.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_live_pipeline import scene_of

from lfr_eval.live import (
    DEFAULT_RECOGNITION_SHARE,
    DutyCycle,
    LivePipeline,
    LiveSettings,
    WatchlistHolder,
    live_engine,
    recognition_share_from_env,
)
from lfr_eval.live._duty import live_engine_threads


class FakeClock:
    """A clock the test moves by hand (wall and CPU)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_step_is_followed_by_a_pause_in_proportion_to_its_length() -> None:
    clock, cpu = FakeClock(), FakeClock()
    duty = DutyCycle(clock=clock, cpu_clock=cpu)
    assert duty.pause(0.5, 0.05) < 0  # nothing ran yet: start at once
    with duty.step():
        clock.now += 0.2
        cpu.now += 0.15
    # busy 0.2 s at share 0.5: the next step no sooner than 0.4 s after this one began
    assert duty.pause(0.5, 0.05) == pytest.approx(0.2)
    assert duty.pause(0.25, 0.05) == pytest.approx(0.6)
    # no bound (share 1): the next step may start as soon as this one ended
    assert duty.pause(1.0, 0.05) == pytest.approx(0.0)
    clock.now += 0.5
    assert duty.pause(0.5, 0.05) < 0
    # a very short step: the shortest interval rules
    with duty.step():
        clock.now += 0.001
    assert duty.pause(0.5, 0.05) == pytest.approx(0.049)
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]"):
        duty.pause(0.0)
    with pytest.raises(ValueError, match=r"share must be in \(0, 1\]"):
        duty.pause(1.5)


def test_load_reports_busy_and_cpu_share_over_the_window() -> None:
    clock, cpu = FakeClock(), FakeClock()
    duty = DutyCycle(clock=clock, cpu_clock=cpu)
    for _ in range(4):  # 0.25 s busy (0.2 s CPU) every second
        with duty.step():
            clock.now += 0.25
            cpu.now += 0.2
        clock.now += 0.75
    load = duty.load(0.5, window_s=4.0)
    assert load.share_bound == 0.5
    assert load.busy_share == pytest.approx(0.25)
    assert load.cpu_share == pytest.approx(0.2)
    assert load.steps_per_s == pytest.approx(1.0)
    # a window that cuts a step in two counts the part inside it, CPU pro rata
    load = duty.load(0.5, window_s=0.875)
    assert load.busy_share == pytest.approx(0.125 / 0.875)
    assert load.cpu_share == pytest.approx(0.1 / 0.875)
    assert len(duty.recent_steps()) == 4


def test_the_share_comes_from_the_environment_or_the_default() -> None:
    assert recognition_share_from_env({}) == DEFAULT_RECOGNITION_SHARE
    assert recognition_share_from_env({"LFR_LIVE_CPU_SHARE": " 0.3 "}) == 0.3
    for bad in ("0", "1.5", "half", "nan"):
        with pytest.raises(ValueError, match="LFR_LIVE_CPU_SHARE.*number in \\(0, 1\\]"):
            recognition_share_from_env({"LFR_LIVE_CPU_SHARE": bad})


def test_live_engine_embeds_the_same_on_one_thread(dlib_engine, people) -> None:
    live = live_engine(dlib_engine)
    assert live_engine_threads(live) == 1
    # the shared engine keeps its own session (other pages); the models are not reloaded
    assert live is not dlib_engine and live._onnx is not dlib_engine._onnx
    assert live._shape_predictor is dlib_engine._shape_predictor
    assert live.engine_id == dlib_engine.engine_id
    assert live_engine(live) is live
    detections = dlib_engine.detect(people.enrol_photo)
    chips = dlib_engine.crops(people.enrol_photo, detections)
    assert len(chips) >= 1
    np.testing.assert_allclose(
        live.embed_crops(chips), dlib_engine.embed_crops(chips), rtol=0, atol=1e-5
    )
    with pytest.raises(ValueError, match="threads must be >= 1"):
        dlib_engine.with_threads(0)


@pytest.mark.parametrize("share", [0.2, 0.6])
def test_the_worker_stays_within_its_share(
    dlib_engine, people, threshold, watchlist, share: float
) -> None:
    """Every step is followed by a pause of at least ``w / share - w``, so over the run the
    worker is busy at most ``share`` of the time (up to the step in progress)."""
    scene = scene_of(people, strangers=1, duration=3.0)
    frames = list(scene.frames())
    settings = LiveSettings(threshold=threshold, recognition_cpu_share=share)
    with LivePipeline(live_engine(dlib_engine), WatchlistHolder(watchlist), settings) as pipeline:
        # frames in a loop until the worker has run a few steps (a deadline, not a measurement:
        # a loaded machine only makes this take longer)
        deadline, i = time.monotonic() + 120, 0
        while len(pipeline.duty_cycle.recent_steps()) < 6 and time.monotonic() < deadline:
            pipeline.render(frames[i % len(frames)])
            time.sleep(1 / scene.fps)
            i += 1
        steps = pipeline.duty_cycle.recent_steps()
        load = pipeline.recognition_load()
    assert pipeline.error is None
    assert len(steps) >= 3, "the worker should have run a few steps"
    for (start, end, _), (next_start, _, _) in zip(steps, steps[1:]):
        assert next_start - start >= (end - start) / share - 1e-6
    busy = sum(end - start for start, end, _ in steps[:-1])
    assert busy <= share * (steps[-1][0] - steps[0][0]) + 1e-6
    assert load.share_bound == share and 0.0 <= load.busy_share <= 1.0
