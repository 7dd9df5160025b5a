"""Deployment configurations: threshold, engine, watchlist and retention, with provenance.

A :class:`DeploymentConfig` is what policy staff sign off: the face-match threshold (a cosine
similarity in [-1, 1]), the engine that produces the similarities (named by model file hashes),
the watchlist (named by id and content hash), the retention policy, and the evaluation evidence
behind the threshold (the results file's hash and FPIR/TPIR at the threshold with intervals).

It is written as JSON that validates against ``schemas/deployment_config.schema.json`` and
carries ``config_sha256``, the sha256 of its own canonical JSON, so an edited file is detected.
:func:`verify_config` then checks the named artefacts are the ones at hand and refuses any
mismatch with a :class:`~lfr_eval.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema

from lfr_eval.errors import ConfigError, SignatureError
from lfr_eval.faces import EngineId, FaceEngine, ModelFile, sha256_file
from lfr_eval.limits import load_json
from lfr_eval.signing import PURPOSE_CONFIG, KeyRing, Signature, SignatureCheck, SigningKey

if TYPE_CHECKING:
    from lfr_eval.protocols import ScaledFpir
    from lfr_eval.report import AggregateResult
    from lfr_eval.results import EvaluationResult
    from lfr_eval.watchlist import Watchlist

SCHEMA_VERSION = "1.0"
SCHEMA_FILE = "deployment_config.schema.json"

#: Hours alert captures are kept for officer review before they are purged (the force's policy).
DEFAULT_ALERT_CAPTURE_HOURS = 24

#: Two floats read back from JSON are "the same" figure when they differ by less than this.
_FLOAT_TOLERANCE = 1e-9
#: Evaluation figures (rates, interval bounds) are the same to this relative precision: aggregate
#: tables are stored with 8 significant digits.
_FIGURE_TOLERANCE = 1e-6

#: Largest deployment config accepted, in bytes (a real one is a few kB).
MAX_CONFIG_BYTES = 1 << 20

MSG_NOT_JSON = "deployment config {path} is not valid JSON ({reason}); was it edited by hand?"
MSG_SCHEMA = "deployment config {path} does not match the schema: {field}: {reason}"
MSG_TAMPERED = (
    "deployment config {path} has been changed since it was exported: its content hash is {actual} "
    "but the file says {expected}. Export the configuration again rather than editing it."
)
MSG_MISMATCH = (
    "deployment config refused: {field} is {expected!s} in the config but {actual!s} here. {advice}"
)


@dataclass(frozen=True)
class WatchlistRef:
    """The watchlist a configuration is for, by identity and content.

    Attributes
    ----------
    id : str
        The watchlist's stable identifier (stays the same as subjects are added or removed).
    content_sha256 : str
        Hex sha256 of the watchlist's content (subjects, templates, categories, expiry); any
        change to who is listed changes it.
    subject_count : int
        Number of distinct subjects listed (N in FPIR(N, T)).
    bundle_path : str or None
        File name of an exported watchlist bundle, relative to the config file's folder.
    bundle_sha256 : str or None
        Hex sha256 of that bundle file.
    """

    id: str
    content_sha256: str
    subject_count: int
    bundle_path: str | None = None
    bundle_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        bundle = None
        if self.bundle_path is not None:
            bundle = {"path": self.bundle_path, "sha256": self.bundle_sha256}
        return {
            "id": self.id,
            "content_sha256": self.content_sha256,
            "subject_count": self.subject_count,
            "bundle": bundle,
        }

    @classmethod
    def from_watchlist(
        cls, watchlist: Watchlist, *, bundle: str | os.PathLike[str] | None = None
    ) -> WatchlistRef:
        """The reference to a watchlist store as it is now (optionally with a bundle file).

        Parameters
        ----------
        watchlist : Watchlist
        bundle : path, optional
            An exported bundle *file* (``.zip``) to name; recorded by file name (it must be kept
            beside the config) and sha256.
        """
        bundle_path = bundle_sha = None
        if bundle is not None:
            bundle = Path(bundle)
            if not bundle.is_file():
                raise ConfigError(
                    f"watchlist bundle {bundle} is not a file; export the bundle as a .zip to "
                    "name it in a deployment config"
                )
            bundle_path, bundle_sha = bundle.name, sha256_file(bundle)
        return cls(
            id=watchlist.watchlist_id,
            content_sha256=watchlist.verify(),
            subject_count=len(watchlist),
            bundle_path=bundle_path,
            bundle_sha256=bundle_sha,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchlistRef:
        bundle = data.get("bundle") or {}
        return cls(
            id=data["id"],
            content_sha256=data["content_sha256"],
            subject_count=int(data["subject_count"]),
            bundle_path=bundle.get("path"),
            bundle_sha256=bundle.get("sha256"),
        )


@dataclass(frozen=True)
class RetentionPolicy:
    """How long captured faces are kept.

    Attributes
    ----------
    alert_capture_hours : int
        Hours an alert capture (the face that raised an alert) is kept for officer review before
        it is purged; 0 to 8760. Default 24, the force's published policy.
    non_matching_captures : str
        Always ``"never_stored"``: a face that raises no alert is never written to disk. It is a
        field so the config states the rule, not an option.
    """

    alert_capture_hours: int = DEFAULT_ALERT_CAPTURE_HOURS
    non_matching_captures: str = "never_stored"

    def __post_init__(self) -> None:
        if not 0 <= int(self.alert_capture_hours) <= 8760:
            raise ConfigError(
                f"alert capture retention must be 0 to 8760 hours, not {self.alert_capture_hours}"
            )
        if self.non_matching_captures != "never_stored":
            raise ConfigError("non-matching captures are never stored; no other policy is allowed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert_capture_hours": int(self.alert_capture_hours),
            "non_matching_captures": self.non_matching_captures,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetentionPolicy:
        return cls(
            alert_capture_hours=int(data["alert_capture_hours"]),
            non_matching_captures=data["non_matching_captures"],
        )


@dataclass(frozen=True)
class RateEvidence:
    """One measured proportion with its confidence interval.

    Attributes
    ----------
    value : float
        The proportion, in [0, 1].
    ci_low, ci_high : float
        Interval bounds, in [0, 1].
    count : int
        Searches in the numerator (false positives for FPIR, hits for TPIR).
    trials : int
        Searches in the denominator (non-mated searches for FPIR, mated for TPIR).
    """

    value: float
    ci_low: float
    ci_high: float
    count: int
    trials: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": float(self.value),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "count": int(self.count),
            "trials": int(self.trials),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RateEvidence:
        return cls(
            value=float(data["value"]),
            ci_low=float(data["ci_low"]),
            ci_high=float(data["ci_high"]),
            count=int(data["count"]),
            trials=int(data["trials"]),
        )


#: Appended to :attr:`ScaledFpirEvidence.interval_method` where the scaling table recorded no
#: one-sided bound and ``upper_bound`` is the two-sided upper end instead.
NO_ONE_SIDED = " [no one-sided bound recorded: upper_bound is the two-sided upper end]"


@dataclass(frozen=True)
class ScaledFpirEvidence:
    """FPIR at the deployed watchlist's size, from the evaluation's filler-gallery scaling.

    The figure of :func:`lfr_eval.protocols.scaled_fpir` (the report's scaling table) at the
    config's watchlist size N and threshold.

    Attributes
    ----------
    watchlist_size : int
        N, the deployed watchlist's subjects.
    grid_threshold : float
        The counts' grid threshold the figure was read at (at or below the config's).
    value, ci_low, ci_high, upper_bound : float
        FPIR(N), its two-sided interval and one-sided upper bound, in [0, 1]. The bound is the
        scaling's own (:func:`lfr_eval.protocols._scaled.one_sided_method` names it;
        :meth:`describe` prints it); NaN-free: the two-sided upper end when the table holds no
        one-sided bound, and ``interval_method`` then ends with :data:`NO_ONE_SIDED`.
    confidence : float
    interval_method, estimator : str
        How the interval and the point were made.
    extrapolation : float
        N / F beyond the fillers measured (0 within: no model beyond the counts).
    """

    watchlist_size: int
    grid_threshold: float
    value: float
    ci_low: float
    ci_high: float
    upper_bound: float
    confidence: float
    interval_method: str
    estimator: str
    extrapolation: float

    @classmethod
    def from_figure(cls, figure: ScaledFpir) -> ScaledFpirEvidence:
        recorded = math.isfinite(figure.upper_bound)
        bound = figure.upper_bound if recorded else figure.upper
        conf = figure.confidence if math.isfinite(figure.confidence) else 0.95
        return cls(
            watchlist_size=int(figure.watchlist_size),
            grid_threshold=float(figure.grid_threshold),
            value=float(figure.fpir),
            ci_low=float(figure.lower),
            ci_high=float(figure.upper),
            upper_bound=float(bound),
            confidence=float(conf),
            # said where the bound is the two-sided upper end (describe names it from this)
            interval_method=figure.interval if recorded else figure.interval + NO_ONE_SIDED,
            estimator=figure.estimator,
            extrapolation=float(figure.extrapolation)
            if math.isfinite(figure.extrapolation)
            else 0.0,
        )

    def describe(self) -> str:
        """The figure in plain language (:mod:`lfr_eval.plain`: an upper bound when no search
        met a filler, "not bounded" when the data cannot bound it), with how it was made."""
        from lfr_eval.operational import one_in_n
        from lfr_eval.plain import plain_rate
        from lfr_eval.protocols._scaled import one_sided_bound_text

        figure = plain_rate(
            self.value, self.ci_low, self.ci_high, errors=0 if self.value == 0 else 1,
            confidence=self.confidence,
        )  # fmt: skip
        where = f"scaled to the deployed watchlist of {self.watchlist_size:,}: FPIR"
        how = f"{self.interval_method}; read at the counts' threshold {self.grid_threshold:g}"
        # the bound a claim at this N is checked against, named (the scaling's own one-sided
        # bound, in the words ScaledFpir.describe uses)
        if self.interval_method.endswith(NO_ONE_SIDED):
            bound = (
                f"; no one-sided bound recorded: {self.confidence:.0%} two-sided upper end "
                f"{one_in_n(self.upper_bound)} ({self.upper_bound:.3g}), conservative"
            )
        else:
            bound = "; " + one_sided_bound_text(
                self.upper_bound, self.confidence, self.interval_method
            )
        if self.extrapolation > 1 and figure.bounded and not figure.upper_only:
            # beyond the fillers a range, not an estimate: its low end is no expected value
            return (
                f"{where} {one_in_n(self.ci_low)} to {one_in_n(self.ci_high)}: a range from the "
                f"per-person to the pooled model with their {self.confidence:.0%} interval, "
                f"extrapolated x{self.extrapolation:.3g} beyond the fillers measured, which "
                f"these data cannot narrow ({how}){bound}"
            )
        return f"{where} {figure.text} ({self.estimator}; {how}){bound}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "watchlist_size": int(self.watchlist_size),
            "grid_threshold": float(self.grid_threshold),
            "value": float(self.value),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "upper_bound": float(self.upper_bound),
            "confidence": float(self.confidence),
            "interval_method": self.interval_method,
            "estimator": self.estimator,
            "extrapolation": float(self.extrapolation),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScaledFpirEvidence:
        return cls(
            watchlist_size=int(data["watchlist_size"]),
            grid_threshold=float(data["grid_threshold"]),
            value=float(data["value"]),
            ci_low=float(data["ci_low"]),
            ci_high=float(data["ci_high"]),
            upper_bound=float(data["upper_bound"]),
            confidence=float(data["confidence"]),
            interval_method=str(data["interval_method"]),
            estimator=str(data["estimator"]),
            extrapolation=float(data["extrapolation"]),
        )


@dataclass(frozen=True)
class EvaluationEvidence:
    """The evaluation behind a threshold: which results, and what they say at the threshold.

    Attributes
    ----------
    results_sha256 : str
        Hex sha256 of the saved evaluation results the figures come from.
    dataset_sha256 : str
        Hash of the dataset (manifest) evaluated; empty when the results do not record one.
    protocol : str
        Name of the evaluation protocol.
    watchlist_size : int
        N, the watchlist size of the evaluation (FPIR grows with N).
    threshold : float
        Cosine similarity the figures were computed at; equals the config's threshold.
    confidence : float
        Confidence level of the intervals, e.g. 0.95.
    interval_method : str
        How the intervals were computed (e.g. ``"clopper-pearson"``,
        ``"subject-bootstrap"``).
    n_boot : int or None
        Bootstrap resamples of a ``"subject-bootstrap"`` interval (None otherwise), so the
        figures can be recomputed exactly from the full results.
    fpir : RateEvidence
        FPIR(N, T): non-mated searches with a candidate at or above T.
    tpir : RateEvidence
        TPIR(N, T) = 1 − FNIR(N, T) at rank 1.
    scaled_fpir : ScaledFpirEvidence or None
        FPIR at the deployed watchlist's size when it differs from the N evaluated and the
        results' scaling table holds it (the report's figure); written only when present, so
        configs made without it keep their hash.
    """

    results_sha256: str
    dataset_sha256: str
    protocol: str
    watchlist_size: int
    threshold: float
    confidence: float
    interval_method: str
    n_boot: int | None
    fpir: RateEvidence
    tpir: RateEvidence
    scaled_fpir: ScaledFpirEvidence | None = None

    def describe(self) -> str:
        """The evidence in plain language (:mod:`lfr_eval.plain`), as the export page shows it:
        FPIR as "1 in N" with its interval (an upper bound when no false positive was seen, "not
        bounded" when the data cannot bound it), TPIR as a percentage, each with its counts;
        then the figure at the deployed watchlist's size when the evidence holds one."""
        from lfr_eval.plain import plain_rate

        fpir = plain_rate(
            self.fpir.value, self.fpir.ci_low, self.fpir.ci_high,
            errors=self.fpir.count, confidence=self.confidence,
        )  # fmt: skip
        tpir = plain_rate(
            self.tpir.value, self.tpir.ci_low, self.tpir.ci_high,
            errors=self.tpir.count, confidence=self.confidence, style="percent",
        )  # fmt: skip
        text = (
            f"measured with a {self.watchlist_size:,}-person watchlist: FPIR {fpir.text}; "
            f"{self.fpir.count:,} of {self.fpir.trials:,} non-mated searches; TPIR {tpir.text}; "
            f"{self.tpir.count:,} of {self.tpir.trials:,} mated searches ({self.interval_method})"
        )
        if self.scaled_fpir is not None:
            text += "; " + self.scaled_fpir.describe()
        return text

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.scaled_fpir is None else {"scaled_fpir": self.scaled_fpir.to_dict()}
        return extra | {
            "results_sha256": self.results_sha256,
            "dataset_sha256": self.dataset_sha256,
            "protocol": self.protocol,
            "watchlist_size": int(self.watchlist_size),
            "threshold": float(self.threshold),
            "confidence": float(self.confidence),
            "interval_method": self.interval_method,
            "n_boot": self.n_boot,
            "fpir": self.fpir.to_dict(),
            "tpir": self.tpir.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationEvidence:
        return cls(
            results_sha256=data["results_sha256"],
            dataset_sha256=data["dataset_sha256"],
            protocol=data["protocol"],
            watchlist_size=int(data["watchlist_size"]),
            threshold=float(data["threshold"]),
            confidence=float(data["confidence"]),
            interval_method=data["interval_method"],
            n_boot=None if data["n_boot"] is None else int(data["n_boot"]),
            fpir=RateEvidence.from_dict(data["fpir"]),
            tpir=RateEvidence.from_dict(data["tpir"]),
            scaled_fpir=None
            if data.get("scaled_fpir") is None
            else ScaledFpirEvidence.from_dict(data["scaled_fpir"]),
        )


@dataclass(frozen=True)
class DeploymentConfig:
    """A signed-off configuration for one LFR deployment.

    Attributes
    ----------
    threshold : float
        Face-match threshold: an alert fires when the best cosine similarity is at or above it.
        In [-1, 1].
    engine : EngineId
        Engine backend and every model file it loads, by sha256.
    watchlist : WatchlistRef
        Watchlist id, content hash, subject count and optional bundle.
    retention : RetentionPolicy
    evidence : EvaluationEvidence or None
        The evaluation the threshold rests on; ``None`` when none was attached (the Export page
        and CLI warn about it).
    approved_by : str
        Who approved the configuration (free text).
    notes : str
    created : str
        UTC creation time, ISO 8601.
    schema_version : str
    """

    threshold: float
    engine: EngineId
    watchlist: WatchlistRef
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    evidence: EvaluationEvidence | None = None
    approved_by: str = ""
    notes: str = ""
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    schema_version: str = SCHEMA_VERSION
    signature: Signature | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold) or not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"threshold must be a cosine similarity in [-1, 1], not {self.threshold}"
            )
        if self.evidence is not None and not _same_float(self.evidence.threshold, self.threshold):
            raise ConfigError(
                f"the evaluation evidence is at threshold {self.evidence.threshold} but the "
                f"config's threshold is {self.threshold}; recompute the evidence at the threshold"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, including ``config_sha256`` and the signature (if signed)."""
        body = self._body()
        document = {**body, "config_sha256": _canonical_sha256(body)}
        if self.signature is not None:
            document["signature"] = self.signature.to_dict()
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @property
    def sha256(self) -> str:
        """The config's self-hash: sha256 of the canonical JSON of every other field."""
        return _canonical_sha256(self._body())

    def _body(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "created": self.created,
            "similarity": "cosine",
            "threshold": float(self.threshold),
            "engine": self.engine.to_dict(),
            "watchlist": self.watchlist.to_dict(),
            "retention": self.retention.to_dict(),
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
            "approved_by": self.approved_by,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> DeploymentConfig:
        """Validate a JSON document (schema and self-hash) and build the config.

        Raises
        ------
        ConfigError
            The document does not match the schema, or its ``config_sha256`` does not match
            its content.
        """
        validate_document(data, source=source)
        body = {k: v for k, v in data.items() if k not in ("config_sha256", "signature")}
        actual = _canonical_sha256(body)
        if actual != data["config_sha256"]:
            raise ConfigError(
                MSG_TAMPERED.format(path=source, actual=actual, expected=data["config_sha256"])
            )
        evidence = data["evidence"]
        return cls(
            schema_version=data["schema_version"],
            created=data["created"],
            threshold=float(data["threshold"]),
            engine=EngineId.from_dict(data["engine"]),
            watchlist=WatchlistRef.from_dict(data["watchlist"]),
            retention=RetentionPolicy.from_dict(data["retention"]),
            evidence=None if evidence is None else EvaluationEvidence.from_dict(evidence),
            approved_by=data["approved_by"],
            notes=data["notes"],
            signature=(
                None
                if data.get("signature") is None
                else _parse_signature(data["signature"], source)
            ),
        )


def _parse_signature(data: Any, source: str) -> Signature:
    try:
        return Signature.from_dict(data, source=f"deployment config {source} signature")
    except SignatureError as exc:
        raise ConfigError(str(exc)) from None


def sign_config(config: DeploymentConfig, key: SigningKey | None = None) -> DeploymentConfig:
    """The config signed with ``key`` (default: this installation's, :meth:`KeyRing.signing_key`).

    The signature covers ``config_sha256`` and so every other field, provenance included
    (``created``, ``approved_by``, ``notes``, the evidence), plus the signer's name and time.

    Raises
    ------
    SignatureError
        No signing key (``lfr-eval keys generate``) or an unusable one.
    """
    from dataclasses import replace

    key = key if key is not None else KeyRing().signing_key()
    return replace(config, signature=key.sign(PURPOSE_CONFIG, config.sha256))


def check_signature(
    config: DeploymentConfig,
    *,
    keyring: KeyRing | None = None,
    allow_unsigned: bool = False,
    source: str = "deployment config",
) -> SignatureCheck:
    """Check the config's signature against the trusted keys.

    The hash signed is recomputed from the config's content, so an edited and re-hashed file
    fails even though its ``config_sha256`` is self-consistent.

    Raises
    ------
    ConfigError
        Unsigned (unless ``allow_unsigned``), signed with an untrusted or revoked key, or an
        invalid signature.
    """
    keyring = keyring if keyring is not None else KeyRing()
    try:
        return keyring.check(
            config.signature,
            purpose=PURPOSE_CONFIG,
            sha256=config.sha256,
            what=source,
            allow_unsigned=allow_unsigned,
        )
    except SignatureError as exc:
        raise ConfigError(f"deployment config refused: {exc}") from None


@dataclass(frozen=True)
class VerifiedField:
    """One field :func:`verify_config` compared, with the value both sides agree on."""

    field: str
    value: str


@dataclass(frozen=True)
class ConfigVerification:
    """What :func:`verify_config` checked (every check passed, or it would have raised).

    Attributes
    ----------
    config_sha256 : str
    checked : tuple of VerifiedField
        Every field compared against the artefacts given.
    not_checked : tuple of str
        Parts of the config that could not be checked because the artefact was not given
        (e.g. ``"evidence"`` when no results were passed).
    """

    config_sha256: str
    checked: tuple[VerifiedField, ...]
    not_checked: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every part of the config was checked against a real artefact."""
        return not self.not_checked


def evidence_from_results(
    results: EvaluationResult | AggregateResult,
    threshold: float,
    *,
    interval_method: str | None = None,
    n_boot: int | None = None,
    confidence: float | None = None,
    deployed_watchlist_size: int | None = None,
) -> EvaluationEvidence:
    """FPIR and TPIR at ``threshold`` with intervals, from evaluation results.

    Parameters
    ----------
    results : EvaluationResult or AggregateResult
        Full results are aggregated at exactly ``threshold`` (:meth:`AggregateResult.from_result`,
        with the interval settings below or its defaults); aggregate results must have
        ``threshold`` on their grid and keep the intervals they were made with.
    threshold : float
        Cosine similarity in [-1, 1].
    interval_method, n_boot, confidence : optional
        Interval settings for full results (e.g. those recorded in a config's evidence, to
        recompute its figures exactly).
    deployed_watchlist_size : int, optional
        The deployed watchlist's N: when it differs from the N evaluated, the evidence also
        holds the results' filler-gallery FPIR at that N
        (:func:`lfr_eval.protocols.scaled_fpir`, the report's scaling-table figure), if the
        table holds that N.

    Returns
    -------
    EvaluationEvidence
        ``results_sha256`` is the hash of the full evaluation result (an aggregate records the
        hash of the result it was made from), so the same evaluation is named the same way
        whichever form is at hand.

    Raises
    ------
    ConfigError
        The threshold is off the aggregate's grid, or the results have no mated or no
        non-mated searches to support a threshold.
    """
    from lfr_eval.explain import ExplainError, grid_threshold, rate_at
    from lfr_eval.report import AggregateResult

    if isinstance(results, AggregateResult):
        agg = results
    else:
        options: dict[str, Any] = {}
        if interval_method is not None:
            options["ci_method"] = interval_method
        if n_boot is not None:
            options["n_boot"] = n_boot
        if confidence is not None:
            options["confidence"] = confidence
        agg = AggregateResult.from_result(results, thresholds=[threshold], attributes=[], **options)
    try:
        grid_threshold(agg, threshold)
        fpir = rate_at(agg, "fpir", threshold)
        tpir = rate_at(agg, "fnir", threshold).complement()
    except ExplainError as exc:
        raise ConfigError(f"cannot attach evaluation evidence: {exc}") from None
    for name, rate in (("non-mated", fpir), ("mated", tpir)):
        if rate.insufficient_data:
            raise ConfigError(
                f"cannot attach evaluation evidence: the results hold no {name} searches, so "
                "they say nothing about this threshold"
            )
    provenance = agg.provenance
    intervals = agg.intervals
    scaled = None
    if deployed_watchlist_size is not None and deployed_watchlist_size != agg.watchlist_size:
        from lfr_eval.protocols import ProtocolError, scaled_fpir

        # the full results' table: an aggregate at one threshold keeps only that row
        table = agg.scaling if isinstance(results, AggregateResult) else results.scaling
        held = (
            set()
            if table is None or table.empty
            else {int(n) for n in table["watchlist_size"].unique()}
        )
        figure = None
        # a size the table does not hold has no figure at any threshold (the evidence then
        # records the measured one only); one it holds must be readable at this threshold
        if int(deployed_watchlist_size) in held:
            try:
                figure = scaled_fpir(table, int(deployed_watchlist_size), float(threshold))
            except ProtocolError as exc:
                raise ConfigError(f"cannot attach evaluation evidence: {exc}") from None
        scaled = None if figure is None else ScaledFpirEvidence.from_figure(figure)
    return EvaluationEvidence(
        results_sha256=provenance.result_sha256,
        dataset_sha256=provenance.dataset.sha256,
        protocol=provenance.protocol.kind,
        watchlist_size=agg.watchlist_size,
        threshold=float(threshold),
        confidence=intervals.confidence,
        interval_method=intervals.method,
        n_boot=intervals.n_boot if intervals.bootstrapped else None,
        fpir=RateEvidence(fpir.rate, fpir.ci_low, fpir.ci_high, fpir.errors, fpir.trials),
        tpir=RateEvidence(tpir.rate, tpir.ci_low, tpir.ci_high, tpir.errors, tpir.trials),
        scaled_fpir=scaled,
    )


def make_config(
    *,
    threshold: float,
    engine: FaceEngine | EngineId,
    watchlist: Watchlist,
    results: EvaluationResult | AggregateResult | None = None,
    retention: RetentionPolicy | None = None,
    bundle: str | os.PathLike[str] | None = None,
    approved_by: str = "",
    notes: str = "",
) -> DeploymentConfig:
    """Build the config for the artefacts at hand, checking they belong together.

    Parameters
    ----------
    threshold : float
        Face-match threshold, cosine similarity in [-1, 1].
    engine : FaceEngine or EngineId
        The engine the deployment runs.
    watchlist : Watchlist
        The watchlist it searches (re-verified record by record).
    results : EvaluationResult or AggregateResult, optional
        The evaluation behind the threshold; its evidence at ``threshold`` is attached.
    retention : RetentionPolicy, optional
        Default: alert captures 24 hours, non-matching captures never stored.
    bundle : path, optional
        An exported watchlist bundle file (``.zip``) to name, kept beside the config.
    approved_by, notes : str

    Raises
    ------
    ConfigError
        The watchlist's templates or the results come from another recognizer than ``engine``
        (the threshold would mean something else), the threshold is off the results' grid, or
        the bundle is not a file.
    """
    engine_id = engine if isinstance(engine, EngineId) else engine.engine_id
    space = watchlist.embedding_space
    if space is not None and space != engine_id.recognizer_key:
        raise ConfigError(
            f"the watchlist's templates come from {space} but the engine is "
            f"{engine_id.recognizer_key}; a deployment needs both from the same recognizer"
        )
    ref = WatchlistRef.from_watchlist(watchlist, bundle=bundle)
    evidence = None
    if results is not None:
        measured = results.provenance.engine
        if measured.recognizer_key != engine_id.recognizer_key:
            raise ConfigError(
                f"the evaluation results were measured with {measured.recognizer_key} but the "
                f"engine is {engine_id.recognizer_key}: they say nothing about this engine's "
                "threshold. Evaluate the engine in use, or leave the evidence out"
            )
        evidence = evidence_from_results(
            results, threshold, deployed_watchlist_size=ref.subject_count
        )
    return DeploymentConfig(
        threshold=float(threshold),
        engine=engine_id,
        watchlist=ref,
        retention=retention if retention is not None else RetentionPolicy(),
        evidence=evidence,
        approved_by=approved_by,
        notes=notes,
    )


@lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of deployment config files."""
    text = resources.files("lfr_eval.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_document(data: Any, *, source: str = "<dict>") -> None:
    """Check a parsed JSON document against the deployment config schema.

    Raises
    ------
    ConfigError
        Naming the first offending field (as a JSON path) and what is wrong with it.
    """
    validator_cls = jsonschema.validators.validator_for(config_schema())
    validator = validator_cls(config_schema(), format_checker=validator_cls.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return
    where = error.json_path.removeprefix("$").removeprefix(".")
    reason = error.message
    # Name the offending key itself for "missing" and "unexpected" errors, which jsonschema
    # reports at the enclosing object.
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [key for key in error.validator_value if key not in error.instance]
        where, reason = ".".join(filter(None, [where, missing[0]])), "missing"
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed)
        where, reason = ".".join(filter(None, [where, extra[0]])), "not a known field"
    raise ConfigError(MSG_SCHEMA.format(path=source, field=where or "document", reason=reason))


def export_config(config: DeploymentConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` as JSON to ``path`` atomically and return the path.

    The document is validated against the schema before anything is written, so a file on disk
    is always a valid config.
    """
    path = Path(path)
    document = config.to_dict()
    validate_document(document, source=str(path))
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def parse_config(text: str | bytes, *, source: str = "<upload>") -> DeploymentConfig:
    """Parse, validate (schema and self-hash) and build a config from JSON text.

    The JSON is read with :func:`lfr_eval.limits.load_json` limits (1 MiB, nesting, number
    size), so a hostile file is refused with a :class:`ConfigError`, never a traceback.
    The signature is *not* checked here; see :func:`check_signature`.
    """
    data = load_json(
        text, source=f"deployment config {source}", error=ConfigError, max_bytes=MAX_CONFIG_BYTES
    )
    return DeploymentConfig.from_dict(data, source=source)


def load_config(path: str | os.PathLike[str]) -> DeploymentConfig:
    """Read a config file, checking it against the schema and its own hash.

    Raises
    ------
    ConfigError
        Missing or unreadable file, invalid JSON, schema violation, or a content hash that does
        not match (the file was edited after export).
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"deployment config {path} refused: {path.stat().st_size:,} bytes is more than "
                f"a config can be ({MAX_CONFIG_BYTES:,})"
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"deployment config not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read deployment config {path}: {exc.strerror}") from exc
    return parse_config(raw, source=str(path))


def engine_matches(config_engine: EngineId, engine: FaceEngine | EngineId) -> list[VerifiedField]:
    """Compare the config's engine with the engine at hand; raise on any difference."""
    actual = engine.engine_id if not isinstance(engine, EngineId) else engine
    _require(
        "engine.backend",
        config_engine.backend,
        actual.backend,
        "Start the app or CLI with the engine the config names.",
    )
    _require(
        "engine.embedding_dim",
        config_engine.embedding_dim,
        actual.embedding_dim,
        "The config is for a different recognizer.",
    )
    have = {(m.role, m.name): m for m in actual.models}
    checked = [
        VerifiedField("engine.backend", actual.backend),
    ]
    for model in config_engine.models:
        label = f"engine.models[{model.role}:{model.name}].sha256"
        found: ModelFile | None = have.get((model.role, model.name))
        if found is None:
            raise ConfigError(
                MSG_MISMATCH.format(
                    field=f"engine.models[{model.role}]",
                    expected=model.name,
                    actual=", ".join(m.name for m in actual.models if m.role == model.role)
                    or "missing",
                    advice="The engine in use loads a different model file.",
                )
            )
        _require(
            label,
            model.sha256,
            found.sha256,
            "The model file differs from the one evaluated; restore the original file.",
        )
        checked.append(VerifiedField(label, model.sha256))
    extra = sorted(set(have) - {(m.role, m.name) for m in config_engine.models})
    if extra:
        role, name = extra[0]
        raise ConfigError(
            MSG_MISMATCH.format(
                field=f"engine.models[{role}]",
                expected="absent",
                actual=name,
                advice="The engine in use loads a model file the config does not name.",
            )
        )
    return checked


def verify_config(
    config: DeploymentConfig,
    *,
    engine: FaceEngine | EngineId | None = None,
    watchlist: Watchlist | WatchlistRef | None = None,
    results: EvaluationResult | AggregateResult | None = None,
    evidence: EvaluationEvidence | None = None,
    config_dir: str | os.PathLike[str] | None = None,
) -> ConfigVerification:
    """Check that the artefacts at hand are the ones the config names.

    Parameters
    ----------
    config : DeploymentConfig
        As returned by :func:`load_config` (schema and self-hash already checked).
    engine : FaceEngine or EngineId, optional
        The engine in use: backend, embedding size and every model file's sha256 must match.
    watchlist : Watchlist or WatchlistRef, optional
        The watchlist in use: id, content hash and subject count must match. A store is
        re-verified record by record first (:meth:`Watchlist.verify`).
    results : EvaluationResult or AggregateResult, optional
        The evaluation results at hand: the evidence is recomputed from them at the config's
        threshold (:func:`evidence_from_results`) and the results hash and every figure must
        match.
    evidence : EvaluationEvidence, optional
        Evidence already recomputed (instead of ``results``).
    config_dir : path, optional
        Folder of the config file; when the config names a watchlist bundle, the bundle file
        there must exist and have the recorded sha256.

    Returns
    -------
    ConfigVerification
        Every field checked, and the parts that were not (artefact not given).

    Raises
    ------
    ConfigError
        On the first mismatch, naming the field, the two values, and what to do.
    """
    checked: list[VerifiedField] = []
    not_checked: list[str] = []
    if engine is None:
        not_checked.append("engine")
    else:
        checked.extend(engine_matches(config.engine, engine))
    if watchlist is None:
        not_checked.append("watchlist")
    else:
        if not isinstance(watchlist, WatchlistRef):
            watchlist = WatchlistRef.from_watchlist(watchlist)
        advice = "The watchlist has changed since the config was exported; export it again."
        _require(
            "watchlist.id", config.watchlist.id, watchlist.id, "This is a different watchlist."
        )
        _require(
            "watchlist.content_sha256",
            config.watchlist.content_sha256,
            watchlist.content_sha256,
            advice,
        )
        _require(
            "watchlist.subject_count",
            config.watchlist.subject_count,
            watchlist.subject_count,
            advice,
        )
        checked += [
            VerifiedField("watchlist.id", watchlist.id),
            VerifiedField("watchlist.content_sha256", watchlist.content_sha256),
            VerifiedField("watchlist.subject_count", str(watchlist.subject_count)),
        ]
    if config.watchlist.bundle_path is not None:
        if config_dir is None:
            not_checked.append("watchlist.bundle")
        else:
            bundle = Path(config_dir) / config.watchlist.bundle_path
            if not bundle.is_file():
                raise ConfigError(
                    f"deployment config refused: watchlist.bundle {config.watchlist.bundle_path} "
                    f"is not beside the config in {config_dir}; keep the bundle with the config"
                )
            _require(
                "watchlist.bundle.sha256",
                config.watchlist.bundle_sha256,
                sha256_file(bundle),
                "The bundle file was changed or replaced.",
            )
            checked.append(
                VerifiedField("watchlist.bundle.sha256", str(config.watchlist.bundle_sha256))
            )
    if results is not None and config.evidence is not None:
        recorded = config.evidence
        evidence = evidence_from_results(
            results,
            config.threshold,
            interval_method=recorded.interval_method,
            n_boot=recorded.n_boot,
            confidence=recorded.confidence,
            deployed_watchlist_size=None
            if recorded.scaled_fpir is None
            else recorded.scaled_fpir.watchlist_size,
        )
    if config.evidence is None:
        pass
    elif evidence is None:
        not_checked.append("evidence")
    else:
        checked.extend(_evidence_matches(config.evidence, evidence))
    return ConfigVerification(
        config_sha256=config.sha256, checked=tuple(checked), not_checked=tuple(not_checked)
    )


def _evidence_matches(
    expected: EvaluationEvidence, actual: EvaluationEvidence
) -> list[VerifiedField]:
    _require(
        "evidence.results_sha256",
        expected.results_sha256,
        actual.results_sha256,
        "These are not the evaluation results the threshold was chosen on.",
    )
    checked = [VerifiedField("evidence.results_sha256", actual.results_sha256)]
    advice = "The results no longer give the figures recorded in the config."
    for name in (
        "dataset_sha256",
        "protocol",
        "watchlist_size",
        "confidence",
        "interval_method",
        "n_boot",
    ):
        _require(f"evidence.{name}", getattr(expected, name), getattr(actual, name), advice)
        checked.append(VerifiedField(f"evidence.{name}", str(getattr(actual, name))))
    for rate in ("fpir", "tpir"):
        exp, act = getattr(expected, rate), getattr(actual, rate)
        for part in ("value", "ci_low", "ci_high", "count", "trials"):
            _require(
                f"evidence.{rate}.{part}",
                getattr(exp, part),
                getattr(act, part),
                advice,
                tolerance=_FIGURE_TOLERANCE,
            )
        checked.append(VerifiedField(f"evidence.{rate}", f"{act.value:.6g}"))
    if expected.scaled_fpir is not None:
        exp_s, act_s = expected.scaled_fpir, actual.scaled_fpir
        if act_s is None:
            raise ConfigError(
                MSG_MISMATCH.format(
                    field="evidence.scaled_fpir", expected="a figure", actual="none",
                    advice=advice,
                )
            )  # fmt: skip
        for part in ("value", "ci_low", "ci_high", "upper_bound", "grid_threshold"):
            _require(f"evidence.scaled_fpir.{part}", getattr(exp_s, part), getattr(act_s, part),
                     advice, tolerance=_FIGURE_TOLERANCE)  # fmt: skip
        checked.append(VerifiedField("evidence.scaled_fpir", f"{act_s.value:.6g}"))
    return checked


def _require(
    field_name: str, expected: Any, actual: Any, advice: str, *, tolerance: float = _FLOAT_TOLERANCE
) -> None:
    same = (
        _same_float(expected, actual, tolerance)
        if isinstance(expected, float) or isinstance(actual, float)
        else expected == actual
    )
    if not same:
        raise ConfigError(
            MSG_MISMATCH.format(field=field_name, expected=expected, actual=actual, advice=advice)
        )


def _same_float(a: float, b: float, tolerance: float = _FLOAT_TOLERANCE) -> bool:
    return math.isclose(float(a), float(b), rel_tol=tolerance, abs_tol=tolerance)


def _canonical_sha256(body: dict[str, Any]) -> str:
    # Canonical form: sorted keys, no whitespace, UTF-8. Python's float repr round-trips, so a
    # float read back from the file re-serialises to the same text.
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
