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
