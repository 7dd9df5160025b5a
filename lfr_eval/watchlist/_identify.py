"""Open-set 1:N identification of the faces in image files against a watchlist's search index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lfr_eval.errors import ImageError

if TYPE_CHECKING:
    from lfr_eval.faces import FaceEngine
    from lfr_eval.search import SearchIndex


@dataclass(frozen=True)
class Candidate:
    """One watchlist subject returned for a face.

    Attributes
    ----------
    rank : int
        1 for the best-scoring subject.
    subject_id, display_name : str
        The subject (display name empty when not known).
    score : float
        Cosine similarity of the face to the subject's best template, in [-1, 1].
    template_id : int
        That template.
    """

    rank: int
    subject_id: str
    score: float
    template_id: int
    display_name: str = ""


@dataclass(frozen=True)
class IdentifiedFace:
    """A face found in an image and what the search returned for it.

    Attributes
    ----------
    box : tuple of float
        (left, top, right, bottom), pixels.
    det_score : float
        Detector confidence.
    alert : bool
        Best candidate's score at or above the threshold.
    candidates : tuple of Candidate
        Top-k distinct subjects, best first (empty for an empty watchlist).
    """

    box: tuple[float, float, float, float]
    det_score: float
    alert: bool
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class ImageIdentification:
    """The result for one image file: its faces, or why it could not be read.

    Attributes
    ----------
    image : str
        The path given.
    faces : tuple of IdentifiedFace
        Largest first; empty when no face was found or the image could not be read.
    error : str or None
        Why the image could not be read.
    exit_code : int
        0, or the :class:`~lfr_eval.errors.ImageError` exit code.
    """

    image: str
    faces: tuple[IdentifiedFace, ...] = ()
    error: str | None = None
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``lfr-eval identify --json``); scores rounded to 4 places, boxes to 0.1."""
        return {
            "image": self.image,
            "error": self.error,
            "exit_code": self.exit_code,
            "faces": [
                {
                    "box": [round(v, 1) for v in face.box],
                    "det_score": face.det_score,
                    "alert": face.alert,
                    "candidates": [
                        {
                            "rank": c.rank,
                            "subject_id": c.subject_id,
                            "score": round(c.score, 4),
                            "template_id": c.template_id,
                            "display_name": c.display_name,
                        }
                        for c in face.candidates
                    ],
                }
                for face in self.faces
            ],
        }


def identify_images(
    engine: FaceEngine,
    index: SearchIndex,
    images: Sequence[str],
    *,
    top_k: int,
    threshold: float,
    display_names: Mapping[str, str] | None = None,
) -> list[ImageIdentification]:
    """Detect the faces in each image and search them all against ``index`` in one batch.

    Parameters
    ----------
    engine : FaceEngine
        Must be the engine the watchlist was enrolled with (the index checks the embedding
        space).
    index : SearchIndex
        The watchlist's templates.
    images : sequence of str
        Image file paths; one that cannot be read gets ``error`` and the others are searched.
    top_k : int
        Candidates kept per face (distinct subjects).
    threshold : float
        Face-match threshold, cosine similarity in [-1, 1]: a face alerts when its best
        candidate scores at or above it.
    display_names : mapping, optional
        subject id -> name shown with each candidate.

    Returns
    -------
    list of ImageIdentification
        One per image, in order.
    """
    from lfr_eval.faces import load_image

    names = display_names or {}
    found: list[tuple[str, list[Any]]] = []
    failed: dict[int, ImageError] = {}
    probes: list[np.ndarray] = []
    for i, path in enumerate(images):
        try:
            faces = engine.analyze(load_image(path), embed=True)
        except ImageError as exc:
            failed[i] = exc
            faces = []
        found.append((path, faces))
        # analyze(embed=True) gives every face its embedding
        probes.extend(face.embedding for face in faces if face.embedding is not None)
    alerts: np.ndarray = np.zeros(0, bool)
    candidates: list[tuple[Candidate, ...]] = []
    if probes:
        result = index.search(
            np.stack(probes), top_k, embedding_space=engine.engine_id.recognizer_key
        )
        alerts = result.alerts(threshold)
        for row in range(len(probes)):
            candidates.append(
                tuple(
                    Candidate(
                        rank=rank + 1,
                        subject_id=str(result.subject_ids[row, rank]),
                        score=float(result.scores[row, rank]),
                        template_id=int(result.template_ids[row, rank]),
                        display_name=names.get(str(result.subject_ids[row, rank]), ""),
                    )
                    for rank in range(result.k)
                )
            )
    out: list[ImageIdentification] = []
    row = 0
    for i, (path, faces) in enumerate(found):
        if i in failed:
            out.append(
                ImageIdentification(path, error=str(failed[i]), exit_code=failed[i].exit_code)
            )
            continue
        identified = []
        for face in faces:
            identified.append(
                IdentifiedFace(
                    box=tuple(float(v) for v in face.box),  # type: ignore[arg-type]
                    det_score=float(face.det_score),
                    alert=bool(alerts[row]),
                    candidates=candidates[row],
                )
            )
            row += 1
        out.append(ImageIdentification(path, faces=tuple(identified)))
    return out
