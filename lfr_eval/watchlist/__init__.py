"""The watchlist: who is searched for, with governance (reason, expiry, audit) built in.

A :class:`Watchlist` is one SQLite file holding subjects (id, display name, category, reason
for inclusion, created, expiry), their face templates (embedding, engine id, source image
sha256, quality) and an audit log of every change. Its :meth:`~Watchlist.content_hash` names a
watchlist version. Enrol from image files, a folder per subject or a CSV manifest; export and
import verified bundles; build a :class:`~lfr_eval.search.SearchIndex` for 1:N search.
"""

from __future__ import annotations

from lfr_eval.watchlist._bundle import (
    Bundle,
    BundleLimits,
    export_bundle,
    import_bundle,
    read_bundle,
)
from lfr_eval.watchlist._enrol import (
    MANIFEST_COLUMNS,
    EnrolmentRequest,
    enrol_files,
    enrol_folder,
    enrol_manifest,
    enrol_requests,
    plan_folder,
    plan_manifest,
)
from lfr_eval.watchlist._identify import (
    Candidate,
    IdentifiedFace,
    ImageIdentification,
    identify_images,
)
from lfr_eval.watchlist._store import (
    DEFAULT_WATCHLIST_NAME,
    KEEP,
    MSG_NO_WATCHLIST,
    MSG_OTHER_SPACE,
    MSG_UNKNOWN_SUBJECT,
    Watchlist,
    WatchlistMatrix,
)
from lfr_eval.watchlist._types import (
    DEFAULT_CATEGORY,
    AuditEntry,
    BundleInfo,
    EnrolledFile,
    EnrolmentReport,
    RefusedFile,
    Subject,
    SubjectInfo,
    Template,
    parse_expiry,
)

__all__ = [
    "DEFAULT_CATEGORY",
    "DEFAULT_WATCHLIST_NAME",
    "KEEP",
    "MANIFEST_COLUMNS",
    "MSG_NO_WATCHLIST",
    "MSG_OTHER_SPACE",
    "MSG_UNKNOWN_SUBJECT",
    "AuditEntry",
    "Bundle",
    "BundleLimits",
    "BundleInfo",
    "Candidate",
    "EnrolledFile",
    "EnrolmentReport",
    "EnrolmentRequest",
    "IdentifiedFace",
    "ImageIdentification",
    "RefusedFile",
    "Subject",
    "SubjectInfo",
    "Template",
    "Watchlist",
    "WatchlistMatrix",
    "enrol_files",
    "enrol_folder",
    "enrol_manifest",
    "enrol_requests",
    "export_bundle",
    "identify_images",
    "import_bundle",
    "parse_expiry",
    "plan_folder",
    "plan_manifest",
    "read_bundle",
]
