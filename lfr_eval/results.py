"""A typed, versioned record of one evaluation, saved to and loaded from a folder.

Layout of a results folder::

    result.json          engine (models with hashes), runtime, dataset hash, protocol and its
                         parameters, seed, software versions, timings, acquisition failures,
                         the sha256 of every other file and of the result itself
    searches.parquet     one row per search: kind, image, subject, mate score and rank or the
                         top-k candidate scores, group labels
    scaling.parquet      FPIR predicted for other watchlist sizes (optional)

``result.json`` is written last, after the files it vouches for, each through a temporary name:
a crash leaves either the previous complete result or none, never a half-written one.
:func:`load_result` checks the hashes and refuses a folder that was altered.

The result hash
---------------
One hash names one evaluation everywhere (``result.json``, the aggregate, the report, the app and a
deployment config's evidence): :func:`result_sha256`, the sha256 of the canonical JSON of
``result.json``'s content without the hash itself. That content includes the sha256 of every data
file, so the hash covers every per-search score. :attr:`EvaluationResult.result_hash` gives the
same value before the folder is written (the files are serialised in memory, byte for byte as
:meth:`EvaluationResult.save` writes them) and after it is read back.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lfr_eval.atrest import write_private
from lfr_eval.errors import ResultError
from lfr_eval.faces import EngineId, RuntimeInfo
from lfr_eval.metrics import SearchSet
from lfr_eval.protocols._enrolment import EnrolmentOutcome
from lfr_eval.protocols._npl import WatchlistComposition
from lfr_eval.wording import plural

if TYPE_CHECKING:
    from lfr_eval.metrics._group_frame import IdentificationFrame

#: Version of the results folder layout. Bump on an incompatible change.
#: 2: searches that failed to acquire are stored (NIST convention; mate score -inf, rank N + 1,
#: top-k all -inf) and ``protocol.failures`` says whether they were; version 1 folders (which
#: left them out) are still read, as ``failures="exclude"``.
RESULT_SCHEMA_VERSION = 2

#: Layout versions :func:`load_result` reads.
READABLE_SCHEMA_VERSIONS = (1, 2)

RESULT_FILE = "result.json"
SEARCHES_FILE = "searches.parquet"
SCALING_FILE = "scaling.parquet"

#: Prefix of group-label columns in ``searches.parquet``.
GROUP_PREFIX = "group."

MSG_NOT_A_RESULT = (
    "{path} is not an evaluation results folder (no {file}); run 'lfr-eval evaluate' to make one"
)
MSG_VERSION = (
    "results in {path} use layout version {found}; this lfr-eval reads versions {expected}. "
    "Re-run the evaluation with this version"
)
MSG_TAMPERED = (
    "{file} in {path} does not match the hash recorded in result.json: the results were "
    "changed after they were written. Re-run the evaluation"
)
MSG_CORRUPT = "results in {path} are unreadable ({reason}); re-run the evaluation"

#: Packages whose versions every result records (those that can change a number).
RECORDED_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "dlib-bin",
    "dlib",
    "face_recognition_models",
    "onnxruntime",
    "onnxruntime-gpu",
    "insightface",
    "torch",
    "faiss-cpu",
    "opencv-python-headless",
    "opencv-python",
    "lfr-workbench",
)


def software_versions() -> dict[str, str]:
    """Versions of Python, the platform and the installed packages that affect results."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    from lfr_eval import __version__

    versions["lfr_eval"] = __version__
    return versions


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sha256_path(path: Path) -> str:
    return _sha256_bytes(path.read_bytes())


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_json_default).encode()


def result_sha256(content: Mapping[str, Any]) -> str:
    """The result hash: sha256 (hex) of ``result.json``'s content in canonical JSON.

    Parameters
    ----------
    content : mapping
        ``result.json`` without its ``result_sha256`` key: metadata plus ``files`` (the
        sha256 of each data file).

    This is the only definition of the hash; every output that names a result uses it.
    """
    return _sha256_bytes(_canonical(dict(content)))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


@dataclass(frozen=True)
class DatasetInfo:
    """Which images were evaluated.

    Attributes
    ----------
    name : str
    sha256 : str
        :meth:`lfr_eval.datasets.Manifest.dataset_hash` of the manifest (paths, image hashes,
        subjects, labels).
    n_images, n_subjects : int
    attributes : tuple of str
        Group attribute columns.
    """

    name: str
    sha256: str
    n_images: int
    n_subjects: int
    attributes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "n_images": self.n_images,
            "n_subjects": self.n_subjects,
            "attributes": list(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetInfo:
        return cls(
            name=data["name"],
            sha256=data["sha256"],
            n_images=int(data["n_images"]),
            n_subjects=int(data["n_subjects"]),
            attributes=tuple(data["attributes"]),
        )


@dataclass(frozen=True)
class ProtocolInfo:
    """Which protocol made the searches.

    Attributes
    ----------
    kind : str
        ``"open_set"`` or ``"npl"``.
    params : dict
        The protocol's parameters (``OpenSetParams.to_dict()`` …), seed included.
    counts : dict
        Images and subjects in each role (before failures to acquire).
    top_k : int
        Candidates kept per non-mated search.
    failed_to_enrol : int
        Enrolled subjects with no usable enrolment image.
    failures : str
        How probes that failed to acquire entered the rates: ``"nist"`` (failed mated probes
        are misses, failed non-mated probes searches with no candidate) or ``"exclude"``.
    enrolment : EnrolmentOutcome or None
        Failure-to-enrol rate and counts, and whether those subjects' mated searches are
        misses in FNIR (``policy="nist"``) or left out; None in results written before it
        was recorded (their mated searches were left out).
    """

    kind: str
    params: dict[str, Any]
    counts: dict[str, Any]
    top_k: int
    failed_to_enrol: int = 0
    failures: str = "nist"
    enrolment: EnrolmentOutcome | None = None

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", 0))

    def describe_enrolment(self) -> str:
        """The failure-to-enrol rate with its counts and how those people's searches were
        counted, in one sentence (CLI summary and report use this text)."""
        if self.enrolment is not None:
            return self.enrolment.describe()
        # results written before the outcome was recorded: only the count is known, and
        # those subjects' mated searches were left out
        return (
            f"failed to enrol {plural(self.failed_to_enrol, 'subject')} (their mated searches were "
            "left out: results made before failures to enrol were counted)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "counts": dict(self.counts),
            "top_k": self.top_k,
            "failed_to_enrol": self.failed_to_enrol,
            "failures": self.failures,
            "enrolment": None if self.enrolment is None else self.enrolment.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProtocolInfo:
        return cls(
            kind=data["kind"],
            params=dict(data["params"]),
            counts=dict(data["counts"]),
            top_k=int(data["top_k"]),
            failed_to_enrol=int(data.get("failed_to_enrol", 0)),
            # results written before failures were counted left them out
            failures=str(data.get("failures", "exclude")),
            enrolment=(
                EnrolmentOutcome.from_dict(data["enrolment"]) if data.get("enrolment") else None
            ),
        )


def runtime_from_dict(data: Mapping[str, Any]) -> RuntimeInfo:
    """:class:`RuntimeInfo` from its ``to_dict()`` form (older files may lack some keys)."""
    return RuntimeInfo(
        name=data["name"],
        providers=tuple(data["providers"]),
        gpu_requested=bool(data["gpu_requested"]),
        gpu_active=bool(data["gpu_active"]),
        precision=data.get("precision", "fp32"),
        version=data.get("version", ""),
    )


@dataclass(frozen=True)
class IntervalSettings:
    """How the confidence intervals of an aggregate were made.

    Attributes
    ----------
    method : str
        Interval method as the metrics report it (``"subject-bootstrap"``,
        ``"clopper-pearson"``, ``"wilson"`` ...); a row whose own ``ci_method`` differs (e.g. a
        bootstrap that fell back for a group with one subject) says so in its row.
    confidence : float
        Two-sided coverage in (0, 1).
    n_boot : int or None
        Bootstrap replicates (None for binomial intervals).
    seed : int
        Seed of the bootstrap.
    """

    method: str
    confidence: float
    n_boot: int | None
    seed: int = 0

    @property
    def bootstrapped(self) -> bool:
        return "bootstrap" in self.method

    def describe(self) -> str:
        """E.g. ``"95% subject-bootstrap intervals (1,000 replicates)"``."""
        text = f"{self.confidence:.0%} {self.method} intervals"
        if self.bootstrapped and self.n_boot:
            text += f" ({self.n_boot:,} replicates)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "confidence": self.confidence,
            "n_boot": self.n_boot,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntervalSettings:
        n_boot = data.get("n_boot")
        return cls(
            method=str(data["method"]),
            confidence=float(data["confidence"]),
            n_boot=None if n_boot is None else int(n_boot),
            seed=int(data.get("seed", 0)),
        )


def _run_fields(run: Provenance | EvaluationResult) -> dict[str, Any]:
    """The engine, runtime, dataset and protocol as JSON fields: written the same way into
    ``result.json`` and into a provenance's dict (the result hash covers them)."""
    return {
        "engine": run.engine.to_dict(),
        "engine_key": run.engine_key,
        "runtime": run.runtime.to_dict(),
        "scoring_runtime": None if run.scoring_runtime is None else run.scoring_runtime.to_dict(),
        "dataset": run.dataset.to_dict(),
        "protocol": run.protocol.to_dict(),
    }


@dataclass(frozen=True)
class Provenance:
    """Where a figure comes from: the engine, its runtime, the data, the protocol, the software
    and (for aggregates) the interval method, plus the hash of the evaluation result.

    Shared by :class:`EvaluationResult` (:attr:`EvaluationResult.provenance`) and
    :class:`lfr_eval.report.AggregateResult`; dicts appear only at the JSON boundary
    (:meth:`to_dict`, :meth:`from_dict`).

    Attributes
    ----------
    engine : EngineId
        Backend and every model file with its sha256.
    engine_key : str
        The embedding cache key (models, detector settings, face choice).
    runtime : RuntimeInfo
        What ran the networks.
    scoring_runtime : RuntimeInfo or None
        What computed the search scores.
    dataset : DatasetInfo
        Dataset name, hash, sizes and attributes.
    protocol : ProtocolInfo
        Protocol kind, parameters (seed included), counts and failure policy.
    software : mapping of str to str
        Package versions (:func:`software_versions`).
    result_sha256 : str
        The result hash (:func:`result_sha256`).
    result_created : str
        ISO 8601 UTC time the evaluation finished.
    intervals : IntervalSettings or None
        How intervals were made (None for a full result: intervals are made when aggregating).
    """

    engine: EngineId
    engine_key: str
    runtime: RuntimeInfo
    scoring_runtime: RuntimeInfo | None
    dataset: DatasetInfo
    protocol: ProtocolInfo
    software: Mapping[str, str]
    result_sha256: str
    result_created: str
    intervals: IntervalSettings | None = None

    @property
    def seed(self) -> int:
        return self.protocol.seed

    def describe_engine(self) -> str:
        """E.g. ``"dlib: dlib_face_recognition_resnet_model_v1.dat (sha256 55533b28a958…)"``."""
        rec = next((m for m in self.engine.models if m.role == "recognizer"), None)
        name = f"{rec.name} (sha256 {rec.sha256[:12]}…)" if rec else "no recognizer recorded"
        return f"{self.engine.backend}: {name}"

    def with_intervals(self, intervals: IntervalSettings) -> Provenance:
        return replace(self, intervals=intervals)

    def to_dict(self) -> dict[str, Any]:
        return {
            **_run_fields(self),
            "software": dict(self.software),
            "result_sha256": self.result_sha256,
            "result_created": self.result_created,
            "intervals": None if self.intervals is None else self.intervals.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Provenance:
        return cls(
            engine=EngineId.from_dict(data["engine"]),
            engine_key=str(data.get("engine_key", "")),
            runtime=runtime_from_dict(data["runtime"]),
            scoring_runtime=None
            if data.get("scoring_runtime") is None
            else runtime_from_dict(data["scoring_runtime"]),
            dataset=DatasetInfo.from_dict(data["dataset"]),
            protocol=ProtocolInfo.from_dict(data["protocol"]),
            software=dict(data.get("software", {})),
            result_sha256=str(data["result_sha256"]),
            result_created=str(data.get("result_created", "")),
            intervals=None
            if data.get("intervals") is None
            else IntervalSettings.from_dict(data["intervals"]),
        )


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything one evaluation produced and what it takes to reproduce it.

    Attributes
    ----------
    engine : EngineId
        Backend and every model file (with sha256) that made the embeddings.
    runtime : RuntimeInfo
        What actually ran the networks.
    engine_key : str
        The embedding cache key (models + detector settings + face choice).
    dataset : DatasetInfo
    protocol : ProtocolInfo
    searches : SearchSet
        Mated and non-mated searches (similarities are cosine in [-1, 1]).
    search_images : tuple of ndarray
        Relative image path of each mated and each non-mated search (for reviewing errors).
    acquisition : DataFrame
        Failures to acquire by role and group (see :class:`~lfr_eval.protocols.ProtocolRun`).
    scaling : DataFrame or None
        FPIR predicted for other watchlist sizes
        (:attr:`lfr_eval.protocols.WatchlistScaling.table`).
    composition : WatchlistComposition or None
        Demographic make-up of the deployed watchlist the scaling was weighted to (None: the
        measured mix).
    scoring_runtime : RuntimeInfo or None
        What computed the search scores (numpy on the CPU, or torch/cupy on a GPU).
    software : dict
        Package versions (:func:`software_versions`).
    timings : dict
        Seconds spent (``hashing``, ``embedding``, ``scoring``, ``scaling``) and counts
        (``images_embedded``, ``images_from_cache``).
    created : str
        ISO 8601 UTC time the evaluation finished.
    schema_version : int
    """

    engine: EngineId
    runtime: RuntimeInfo
    engine_key: str
    dataset: DatasetInfo
    protocol: ProtocolInfo
    searches: SearchSet
    search_images: tuple[np.ndarray, np.ndarray]
    acquisition: pd.DataFrame
    scaling: pd.DataFrame | None = None
    composition: WatchlistComposition | None = None
    scoring_runtime: RuntimeInfo | None = None
    software: dict[str, str] = field(default_factory=software_versions)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    schema_version: int = RESULT_SCHEMA_VERSION
    #: The hash read from ``result.json`` (and checked) when loaded; None for a result made in
    #: memory, whose hash is computed from its content.
    stored_sha256: str | None = field(default=None, repr=False)

    @property
    def provenance(self) -> Provenance:
        """Engine, runtime, dataset, protocol, software and the result hash, typed."""
        return Provenance(
            engine=self.engine,
            engine_key=self.engine_key,
            runtime=self.runtime,
            scoring_runtime=self.scoring_runtime,
            dataset=self.dataset,
            protocol=self.protocol,
            software=dict(self.software),
            result_sha256=self.result_hash,
            result_created=self.created,
        )

    @property
    def seed(self) -> int:
        return self.protocol.seed

    @property
    def watchlist_size(self) -> int:
        return int(self.searches.watchlist_size)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.searches.mated_groups.columns) or tuple(
            self.searches.non_mated_groups.columns
        )

    def identification_frame(
        self,
        thresholds: Sequence[float] | np.ndarray,
        sensitive_features: Sequence[str] = (),
        **options: Any,
    ) -> IdentificationFrame:
        """Per-group FPIR/FNIR with intervals (:class:`lfr_eval.metrics.IdentificationFrame`)."""
        from lfr_eval.metrics._group_frame import IdentificationFrame

        return IdentificationFrame(self.searches, thresholds, list(sensitive_features), **options)

    # ------------------------------------------------------------------ tables
    def searches_frame(self) -> pd.DataFrame:
        """One row per search, as stored in ``searches.parquet``."""
        s = self.searches
        k = s.k
        mated = pd.DataFrame(
            {
                "kind": "mated",
                "image": np.asarray(self.search_images[0], dtype=object),
                "subject_id": np.asarray(s.mated_subjects, dtype=object),
                "mate_score": np.asarray(s.mate_scores, np.float64),
                "mate_rank": np.asarray(s.mate_ranks, np.int64),
                "failed_to_acquire": s.mated_failed,
            }
        )
        non_mated = pd.DataFrame(
            {
                "kind": "non_mated",
                "image": np.asarray(self.search_images[1], dtype=object),
                "subject_id": np.asarray(s.non_mated_subjects, dtype=object),
                "mate_score": np.nan,
                "mate_rank": np.zeros(s.n_non_mated, np.int64),
                "failed_to_acquire": s.non_mated_failed,
            }
        )
        for j in range(k):
            mated[f"top{j + 1}"] = np.nan
            non_mated[f"top{j + 1}"] = np.asarray(s.non_mated_topk[:, j], np.float64)
        for column in self.attributes:
            mated[GROUP_PREFIX + column] = (
                s.mated_groups[column].to_numpy(dtype=object) if s.n_mated else []
            )
            non_mated[GROUP_PREFIX + column] = (
                s.non_mated_groups[column].to_numpy(dtype=object) if s.n_non_mated else []
            )
        return pd.concat([mated, non_mated], ignore_index=True)

    def metadata(self) -> dict[str, Any]:
        """The JSON-able part of the result (without file hashes)."""
        return {
            "schema_version": self.schema_version,
            "created": self.created,
            **_run_fields(self),
            "watchlist_size": self.watchlist_size,
            "n_mated": self.searches.n_mated,
            "n_non_mated": self.searches.n_non_mated,
            "attributes": list(self.attributes),
            "n_failed_mated": self.searches.n_failed_mated,
            "n_failed_non_mated": self.searches.n_failed_non_mated,
            "composition": None if self.composition is None else self.composition.to_dict(),
            "acquisition": self.acquisition.to_dict(orient="records"),
            "software": dict(self.software),
            "timings": dict(self.timings),
        }

    # ------------------------------------------------------------------ persistence
    def _files(self) -> dict[str, bytes]:
        """The data files' bytes, exactly as :meth:`save` writes them."""
        files = {SEARCHES_FILE: _parquet_bytes(self.searches_frame())}
        if self.scaling is not None:
            files[SCALING_FILE] = _parquet_bytes(self.scaling)
        return files

    def _content(self, files: Mapping[str, bytes]) -> dict[str, Any]:
        meta = self.metadata()
        meta["files"] = {name: _sha256_bytes(data) for name, data in files.items()}
        return meta

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the results folder (see module docstring); returns its path.

        Files are written under temporary names and renamed into place, ``result.json`` last.
        ``result.json`` records :attr:`result_hash` as ``result_sha256``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self._files()
        for name, data in files.items():
            _atomic_bytes(data, directory / name)
        if SCALING_FILE not in files and (directory / SCALING_FILE).exists():
            (directory / SCALING_FILE).unlink()
        meta = self._content(files)
        meta["result_sha256"] = result_sha256(meta)
        if self.stored_sha256 is None:
            object.__setattr__(self, "_memo_sha256", meta["result_sha256"])
        text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default)
        _atomic_bytes(text.encode("utf-8"), directory / RESULT_FILE)
        return directory

    @property
    def result_hash(self) -> str:
        """The result hash (:func:`result_sha256`): what ``result.json`` records as
        ``result_sha256``, the same before saving and after loading."""
        if self.stored_sha256 is not None:
            return self.stored_sha256
        memo = getattr(self, "_memo_sha256", None)
        if memo is None:
            memo = result_sha256(self._content(self._files()))
            object.__setattr__(self, "_memo_sha256", memo)
        return memo


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _atomic_bytes(data: bytes, path: Path) -> None:
    # one row per search names the image and the subject: owner-only, like the stores
    write_private(path, data)


def load_result(directory: str | os.PathLike[str]) -> EvaluationResult:
    """Read a results folder written by :meth:`EvaluationResult.save`, checking its hashes.

    Raises
    ------
    ResultError
        No ``result.json``, another layout version, unreadable files, or a file whose hash
        differs from the one recorded (the folder was altered).
    """
    directory = Path(directory)
    meta_path = directory / RESULT_FILE
    if not meta_path.is_file():
        raise ResultError(MSG_NOT_A_RESULT.format(path=directory, file=RESULT_FILE))
    from lfr_eval.limits import load_json

    # Limits on depth and number size: a results folder may come from someone else.
    try:
        meta = load_json(meta_path.read_bytes(), source=RESULT_FILE, error=ResultError)
    except ResultError as exc:
        raise ResultError(MSG_CORRUPT.format(path=directory, reason=exc)) from None
    if not isinstance(meta, dict):
        raise ResultError(MSG_CORRUPT.format(path=directory, reason="result.json is not an object"))
    if meta.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise ResultError(
            MSG_VERSION.format(
                path=directory,
                found=meta.get("schema_version"),
                expected=", ".join(map(str, READABLE_SCHEMA_VERSIONS)),
            )
        )
    recorded = meta.pop("result_sha256", None)
    if recorded != result_sha256(meta):
        raise ResultError(MSG_TAMPERED.format(file=RESULT_FILE, path=directory))
    files = meta.get("files", {})
    for name, expected in files.items():
        path = directory / name
        if not path.is_file() or _sha256_path(path) != expected:
            raise ResultError(MSG_TAMPERED.format(file=name, path=directory))
    try:
        frame = pd.read_parquet(directory / SEARCHES_FILE)
        scaling = pd.read_parquet(directory / SCALING_FILE) if SCALING_FILE in files else None
        return replace(_from_parts(meta, frame, scaling), stored_sha256=recorded)
    except (KeyError, ValueError, TypeError) as exc:
        raise ResultError(MSG_CORRUPT.format(path=directory, reason=exc)) from exc


def _from_parts(
    meta: Mapping[str, Any], frame: pd.DataFrame, scaling: pd.DataFrame | None
) -> EvaluationResult:
    attributes = list(meta["attributes"])
    mated = frame[frame["kind"] == "mated"].reset_index(drop=True)
    non_mated = frame[frame["kind"] == "non_mated"].reset_index(drop=True)
    top_columns = sorted(
        (c for c in frame.columns if c.startswith("top")), key=lambda c: int(c[3:])
    )
    group_columns = [GROUP_PREFIX + a for a in attributes]

    def groups(part: pd.DataFrame) -> pd.DataFrame:
        if not attributes:
            return pd.DataFrame()
        out = part[group_columns].astype(object)
        out.columns = attributes
        return out.reset_index(drop=True)

    searches = SearchSet(
        watchlist_size=int(meta["watchlist_size"]),
        mate_scores=mated["mate_score"].to_numpy(np.float64),
        mate_ranks=mated["mate_rank"].to_numpy(np.int64),
        mated_subjects=mated["subject_id"].to_numpy(dtype=object),
        non_mated_topk=non_mated[top_columns]
        .to_numpy(np.float64)
        .reshape(len(non_mated), len(top_columns)),
        non_mated_subjects=non_mated["subject_id"].to_numpy(dtype=object),
        mated_groups=groups(mated),
        non_mated_groups=groups(non_mated),
    )
    return EvaluationResult(
        engine=EngineId.from_dict(meta["engine"]),
        runtime=runtime_from_dict(meta["runtime"]),
        scoring_runtime=None
        if meta.get("scoring_runtime") is None
        else runtime_from_dict(meta["scoring_runtime"]),
        engine_key=meta["engine_key"],
        dataset=DatasetInfo.from_dict(meta["dataset"]),
        protocol=ProtocolInfo.from_dict(meta["protocol"]),
        searches=searches,
        search_images=(
            mated["image"].to_numpy(dtype=object),
            non_mated["image"].to_numpy(dtype=object),
        ),
        acquisition=pd.DataFrame(
            meta["acquisition"], columns=["role", "attribute", "group", "images", "failed"]
        ),
        scaling=scaling,
        composition=None
        if meta.get("composition") is None
        else WatchlistComposition.from_dict(meta["composition"]),
        software=dict(meta["software"]),
        timings=dict(meta["timings"]),
        created=meta["created"],
        schema_version=int(meta["schema_version"]),
    )


def with_scaling(result: EvaluationResult, scaling: pd.DataFrame | None) -> EvaluationResult:
    """A copy of ``result`` with another watchlist-scaling table (and so another hash)."""
    return replace(result, scaling=scaling, stored_sha256=None)
