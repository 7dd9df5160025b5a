"""Failure to enrol: a watchlist subject whose enrolment images gave no usable template.

ISO/IEC 19795-1 counts a failure to enrol (FTE) apart from the error rates, and the generalised
false-non-match figures count the searches of a person who failed to enrol as misses: the system
could not have found that person. The workbench follows that convention by default
(``enrolment_failures="nist"``, as the failures-to-acquire policy is named): each such subject's
mated searches stay in FNIR's denominator as misses at every threshold and rank.
``enrolment_failures="exclude"`` drops them instead, as if the person had never been listed; the
output says which. Either way the number of subjects who failed to enrol, of those tried, is
reported (:class:`EnrolmentOutcome`), with its interval: each subject is one enrolment attempt,
so the rate is counted by people and the exact Clopper–Pearson interval of ``failed`` in
``subjects`` trials is valid whatever the number of images per person
(:data:`FTE_INTERVAL_METHOD`).

An enrolment image *fails* when the engine found no face in it (or could not read it), or, when
a minimum face size is set, when its face is smaller than that (a quality gate). With
``next_image=True`` a subject whose enrolment images all fail is enrolled from its next usable
image instead (the first of its mated-search images, in manifest order, that passes); that image
is then a template, no longer a search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from lfr_eval.wording import plural

#: How the mated searches of a subject who failed to enrol enter FNIR: "nist" (kept, as misses:
#: ISO/IEC 19795-1's generalised rates) or "exclude" (left out).
EnrolmentFailurePolicy = Literal["nist", "exclude"]
ENROLMENT_FAILURE_POLICIES: tuple[str, ...] = ("nist", "exclude")

MSG_ENROLMENT_POLICY = (
    "enrolment_failures must be 'nist' (searches of people who failed to enrol count as "
    "misses, the default) or 'exclude', got {value!r}"
)
MSG_MIN_FACE = "min_enrolment_face_px must be a positive number of pixels, got {value!r}"
#: How the failure-to-enrol interval is made: one trial per subject tried, so no clustering.
FTE_INTERVAL_METHOD = "Clopper–Pearson over subjects (one enrolment attempt per person)"


@dataclass(frozen=True)
class EnrolmentOutcome:
    """How enrolment went: the failure-to-enrol rate and what became of those people's searches.

    Attributes
    ----------
    subjects : int
        Watchlist subjects the protocol tried to enrol.
    failed : int
        Of those, subjects with no usable enrolment image (not on the watchlist).
    next_image : int
        Subjects whose own enrolment images all failed but who were enrolled from their next
        usable image (only with ``next_image_option``); not counted in ``failed``.
    mated_searches : int
        Mated searches of the subjects who failed to enrol.
    policy : {"nist", "exclude"}
        ``"nist"``: those searches are in FNIR as misses; ``"exclude"``: left out.
    next_image_option : bool
        Whether a failed subject was offered its next image.
    min_face_px : float or None
        Quality gate on enrolment images (inter-ocular distance in pixels), None for none.
    """

    subjects: int
    failed: int
    next_image: int = 0
    mated_searches: int = 0
    policy: str = "nist"
    next_image_option: bool = False
    min_face_px: float | None = None

    @property
    def rate(self) -> float:
        """Failure-to-enrol rate in [0, 1]: ``failed / subjects`` (NaN with no subject)."""
        return self.failed / self.subjects if self.subjects else math.nan

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided interval of :attr:`rate`, counted by people (:data:`FTE_INTERVAL_METHOD`).

        Returns ``(low, high)`` in [0, 1]; ``(0, 1)`` with no subject.
        """
        from lfr_eval.metrics import clopper_pearson

        if self.subjects == 0:
            return 0.0, 1.0
        low, high = clopper_pearson(self.failed, self.subjects, confidence)
        return float(low), float(high)

    def rate_text(self, confidence: float = 0.95) -> str:
        """The rate with its interval in plain words, by :mod:`lfr_eval.plain`'s rules (no
        lower end of 0 when failures were seen; none seen: an upper bound), e.g.
        "1.5% (95% CI 0.31%–4.3%)" or "at most 1.8% (upper end of the 95% CI; none seen)"."""
        from lfr_eval.plain import format_number

        low, high = self.interval(confidence)
        pct = f"{confidence:.0%}"

        def percent(v: float) -> str:
            return f"{format_number(100 * v)}%"

        if self.failed == 0:
            return f"at most {percent(high)} (upper end of the {pct} CI; none seen)"
        return f"{percent(self.rate)} ({pct} CI {percent(low)}–{percent(high)})"

    @property
    def searches_counted(self) -> bool:
        """Whether the failed subjects' mated searches are in FNIR (as misses)."""
        return self.policy == "nist"

    def describe(self) -> str:
        """One plain sentence: the rate with its counts and what happened to the searches."""
        if self.subjects == 0:
            return "failure to enrol: no subject was enrolled"
        gate = (
            f" or whose face was under {self.min_face_px:g} px between the eyes"
            if self.min_face_px
            else ""
        )
        text = (
            f"failure to enrol {self.failed:,} of {self.subjects:,} subjects (no enrolment "
            f"image with a face{gate}): {self.rate_text()}, {FTE_INTERVAL_METHOD}"
        )
        if self.next_image_option:
            text += f"; {self.next_image:,} more enrolled from their next image"
        if self.failed:
            if self.searches_counted:
                text += (
                    f"; their {plural(self.mated_searches, 'mated search')} count as misses in "
                    "FNIR (ISO/IEC 19795-1 convention)"
                )
            else:
                text += (
                    f"; their {plural(self.mated_searches, 'mated search')} are left out of FNIR "
                    "(--enrolment-failures exclude)"
                )
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "subjects": self.subjects,
            "failed": self.failed,
            "next_image": self.next_image,
            "mated_searches": self.mated_searches,
            "policy": self.policy,
            "next_image_option": self.next_image_option,
            "min_face_px": self.min_face_px,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnrolmentOutcome:
        min_face = data.get("min_face_px")
        return cls(
            subjects=int(data["subjects"]),
            failed=int(data["failed"]),
            next_image=int(data.get("next_image", 0)),
            mated_searches=int(data.get("mated_searches", 0)),
            policy=str(data.get("policy", "nist")),
            next_image_option=bool(data.get("next_image_option", False)),
            min_face_px=None if min_face is None else float(min_face),
        )


__all__ = [
    "ENROLMENT_FAILURE_POLICIES",
    "FTE_INTERVAL_METHOD",
    "EnrolmentFailurePolicy",
    "EnrolmentOutcome",
]
