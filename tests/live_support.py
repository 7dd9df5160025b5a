"""Real face photos for the live tests: one listed person (two photos) and strangers.

From LFW when it is present (``../shared/datasets/lfw``), else from the images bundled with the
insightface wheel (Tom Hanks for the listed person, faces cropped from the group photo t1.jpg
for strangers). Nothing is copied into the repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lfr_eval.faces import load_image

#: LFW people used: the listed person and strangers (all with frontal, well-lit first images).
#: With dlib the strangers score 0.75-0.84 against the listed person's photos and the listed
#: person 0.97 against their own (a near-miss such as Hugo_Chavez, 0.88, passes within codec
#: noise of a 0.92 threshold and would make the browser test flaky).
LFW_LISTED = "George_W_Bush"
LFW_STRANGERS = ("Serena_Williams", "Kofi_Annan", "Junichiro_Koizumi", "Jennifer_Aniston")


@dataclass(frozen=True)
class LivePeople:
    """Photos for a live scene.

    Attributes
    ----------
    enrol_photo : ndarray
        Photo the listed person is enrolled from.
    enrol_path : Path
        Its file (for upload in the browser test).
    camera_photo : ndarray
        A different photo of the listed person, shown to the camera.
    strangers : tuple of ndarray
        Photos of people not on the watchlist.
    source : str
        ``"lfw"`` or ``"insightface"``.
    """

    enrol_photo: np.ndarray = field(repr=False)
    enrol_path: Path
    camera_photo: np.ndarray = field(repr=False)
    strangers: tuple[np.ndarray, ...] = field(repr=False)
    source: str
    listed_name: str


def lfw_people(lfw: Path) -> LivePeople:
    images = lfw / "images"
    enrol = images / LFW_LISTED / f"{LFW_LISTED}_0001.jpg"
    return LivePeople(
        enrol_photo=load_image(enrol),
        enrol_path=enrol,
        camera_photo=load_image(images / LFW_LISTED / f"{LFW_LISTED}_0010.jpg"),
        strangers=tuple(load_image(images / n / f"{n}_0001.jpg") for n in LFW_STRANGERS),
        source="lfw",
        listed_name=LFW_LISTED.replace("_", " "),
    )


def insightface_people(folder: Path, engine) -> LivePeople:
    """Tom Hanks (enrolled from the photo, shown mirrored and rescaled) and t1.jpg's faces."""
    enrol_path = folder / "Tom_Hanks_54745.png"
    enrol = load_image(enrol_path)
    camera = np.ascontiguousarray(enrol[:, ::-1])
    group = load_image(folder / "t1.jpg")
    strangers = []
    for face in engine.analyze(group, embed=False)[:4]:
        x1, y1, x2, y2 = face.box
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(w, h) * 1.1
        top, left = int(max(0, cy - half)), int(max(0, cx - half))
        crop = group[top : int(cy + half), left : int(cx + half)]
        strangers.append(cv2.resize(crop, (250, 250), interpolation=cv2.INTER_CUBIC))
    return LivePeople(enrol, enrol_path, camera, tuple(strangers), "insightface", "Tom Hanks")


def live_people(lfw: Path | None, insightface_folder: Path, engine) -> LivePeople:
    return lfw_people(lfw) if lfw is not None else insightface_people(insightface_folder, engine)


def best_face_embedding(engine, image: np.ndarray) -> np.ndarray:
    if engine.engine_id.backend == "insightface" and image.shape[:2] == (
        MARKED_SIZE,
        MARKED_SIZE,
    ):
        image = in_frame(image)  # a marked photo: the synthetic detector needs it on the grid
    faces = engine.analyze(image)
    assert faces, "no face found in a test photo"
    return max(faces, key=lambda f: f.area).embedding


def separating_threshold(engine, people: LivePeople) -> tuple[float, float, float]:
    """(mate score, highest stranger score, a threshold halfway between) with this engine.

    The photos are chosen so the mate scores clearly above every stranger; the assertion says
    so if a different engine or data breaks that.
    """
    enrolled = best_face_embedding(engine, people.enrol_photo)
    mate = float(best_face_embedding(engine, people.camera_photo) @ enrolled)
    strangers = max(float(best_face_embedding(engine, s) @ enrolled) for s in people.strangers)
    assert mate > strangers + 0.02, (
        f"test photos do not separate: mate {mate:.3f}, best stranger {strangers:.3f}"
    )
    return mate, strangers, round((mate + strangers) / 2, 2)


# ---------------------------------------------------------------------- synthetic InsightFace
#: Side of a person's photo in the synthetic-pack scenes, pixels (drawn unscaled).
MARKED_SIZE = 200
#: Where the detector's white cell sits in a marked photo (top-left, pixels): the test SCRFD's
#: box and keypoints (tests/onnx_models.py) then frame the photo, so the ArcFace crop holds it.
MARK_AT = 84


def build_synthetic_pack(folder: Path) -> Path:
    """An InsightFace pack laid out like buffalo_l, from the test-built ONNX models."""
    from onnx_models import build_arcface_like, build_scrfd_like

    folder.mkdir(parents=True, exist_ok=True)
    build_scrfd_like(folder / "det_10g.onnx")
    build_arcface_like(folder / "w600k_r50.onnx")
    return folder


def marked_photo(photo: np.ndarray) -> np.ndarray:
    """A person's photo as the synthetic detector sees a face: 200x200 with a white mark.

    The mark is 40 px square, 4 px larger each side than the detector's 32 px cell, so video
    compression softening its edges does not stop the cell firing when the photo is placed at a
    grid position (:func:`grid_position`).
    """
    out = cv2.resize(photo, (MARKED_SIZE, MARKED_SIZE), interpolation=cv2.INTER_AREA)
    out[MARK_AT - 4 : MARK_AT + 36, MARK_AT - 4 : MARK_AT + 36] = 255
    return np.ascontiguousarray(out)


def grid_position(col: int, row: int) -> tuple[int, int]:
    """Top-left (x, y) for a marked photo whose mark covers stride-32 cell (col, row) of a
    640x480 frame (the synthetic detector's input is the frame itself, letterboxed at scale 1)."""
    return 32 * col - MARK_AT, 32 * row - MARK_AT


def in_frame(photo: np.ndarray, col: int = 6, row: int = 5) -> np.ndarray:
    """A 640x480 frame showing one marked photo at a grid position (for enrolment and scoring)."""
    frame = np.zeros((480, 640, 3), np.uint8)
    x, y = grid_position(col, row)
    frame[y : y + MARKED_SIZE, x : x + MARKED_SIZE] = photo
    return frame


def marked_people(people: LivePeople, tmp: Path) -> LivePeople:
    """The same people for the synthetic pack: its random-weight recognizer knows no identity,
    so the "listed person" is shown to the camera with the very photo they were enrolled from;
    every photo is marked and every photo used alone is put in a 640x480 frame."""
    listed = marked_photo(people.enrol_photo)
    enrol = in_frame(listed)
    enrol_path = tmp / "enrol_synthetic.png"
    cv2.imwrite(str(enrol_path), cv2.cvtColor(enrol, cv2.COLOR_RGB2BGR))
    return LivePeople(
        enrol_photo=enrol,
        enrol_path=enrol_path,
        camera_photo=listed,
        strangers=tuple(marked_photo(s) for s in people.strangers),
        source=f"{people.source}+synthetic-mark",
        listed_name=people.listed_name,
    )


def inline_pipeline(engine, watchlist, threshold: float, session=None, **settings):
    """A live pipeline that recognises on every :meth:`process` call (no worker thread), over
    ``watchlist`` at ``threshold``; ``settings`` are further :class:`LiveConfig` fields."""
    from lfr_eval.live import LivePipeline, LiveSettings, WatchlistHolder

    return LivePipeline(
        engine,
        WatchlistHolder(watchlist),
        LiveSettings(threshold=threshold, **settings),
        session=session,
        background=False,
    )
