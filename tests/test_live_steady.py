"""Steady, honest boxes in the live pipeline (issue 14 item 2): what a box says about a face
found again after it was hidden."""

from __future__ import annotations

import pytest
from live_support import inline_pipeline

from lfr_eval.live import FaceAppearance, LiveSession, SceneScript


@pytest.mark.parametrize("listed_slot", [0, 1])
def test_a_face_found_in_a_hidden_tracks_place_is_nobody_until_checked(
    dlib_engine, people, threshold, watchlist, listed_slot
) -> None:
    """The listed person and a stranger stand side by side; 0.6 s after they leave (longer than
    a box is held, shorter than a track lives) two other strangers step into their places. The
    tracks are found again in place, and only one face is embedded per step: the one not checked
    yet must not be drawn with the listed person's name and alert meanwhile (an officer would
    see a stranger boxed in red), whichever of the two is checked first."""
    slots = [(60, 120), (340, 120)]
    before = [people.strangers[0], people.strangers[0]]
    before[listed_slot] = people.camera_photo
    scene = SceneScript(
        (
            FaceAppearance(before[0], 0.3, 2.0, *slots[0], width=220),
            FaceAppearance(before[1], 0.3, 2.0, *slots[1], width=220),
            FaceAppearance(people.strangers[1], 2.6, 4.0, *slots[0], width=220),
            FaceAppearance(people.strangers[2], 2.6, 4.0, *slots[1], width=220),
        ),
        duration_s=4.0,
        fps=10,
    )
    session = LiveSession()
    pipeline = inline_pipeline(dlib_engine, watchlist, threshold, session, max_faces_per_step=1)
    results = [pipeline.process(f, scene.frame_time(i)) for i, f in enumerate(scene.frames())]
    early = [r for r in results if 0.6 <= r.t < 2.0]
    assert early and all(r.n_alerting == 1 for r in early)  # the listed person, in red
    later = [r for r in results if r.t >= 2.6]
    assert all(len(r.tracks) == 2 for r in later)
    assert all(r.n_alerting == 0 for r in later), "a stranger drawn as the listed person"
    # (the one-subject watchlist's best candidate is always the listed person: the scores say
    # whose face it is)
    assert all(tr.score < threshold for r in later for tr in r.tracks if tr.score is not None)
    # "checking" for a step, then each stranger's own (non-matching) result
    assert any(tr.score is None for tr in later[0].tracks)
    assert all(tr.score is not None for r in later[2:] for tr in r.tracks)
    assert session.stats().alerts == 1 and session.stats().faces_seen == 4
