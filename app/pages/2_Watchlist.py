"""Watchlist: enrol, list, search, edit, remove; bundles; audit log."""

from __future__ import annotations

import json
from pathlib import Path

import _shared
import pandas as pd
import streamlit as st

from lfr_eval.errors import LfrError
from lfr_eval.watchlist import (
    EnrolmentReport,
    SubjectInfo,
    enrol_files,
    enrol_folder,
    import_bundle,
    parse_expiry,
)
from lfr_eval.wording import plural

st.set_page_config(page_title="Watchlist · LFR Workbench", page_icon="🗂️", layout="wide")
_shared.require_role(*_shared.ROLES_WATCHLIST)
st.title("Watchlist")
st.write(
    "Who is searched for. Each person has a category and a reason for inclusion, and may have an "
    "expiry after which they are no longer searched. Every change is written to the audit log. "
    "Only face templates (embeddings) and image hashes are kept unless you ask to keep the photos."
)

#: Suggested categories; any other text can be typed in.
CATEGORIES = (
    "wanted by police or courts",
    "missing person",
    "bail or licence conditions",
    "test volunteer",
    "unspecified",
)
EXPIRY_HELP = (
    "Blank: no expiry. A date (2025-06-30), an ISO date-time, or a duration: 7d, 24h, 30m."
)

engine = _shared.engine_or_stop()
try:
    watchlist = _shared.open_watchlist()
except LfrError as exc:
    _shared.show_error(exc)
    st.stop()


def _after_change(message: str, report: EnrolmentReport | None = None) -> None:
    """Remember what happened and rerun, so every part of the page shows the new content."""
    st.session_state["watchlist_message"] = message
    st.session_state["watchlist_report"] = report
    st.rerun()


def _show_report(report: EnrolmentReport, names: dict[str, str] | None = None) -> None:
    def shown(source: str) -> str:
        return names.get(source, source) if names else source

    if report.enrolled:
        st.success(
            f"Enrolled {plural(report.n_enrolled, 'image')}; new subjects: "
            f"{', '.join(report.new_subjects) or 'none'}."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "file": shown(e.source),
                        "subject": e.subject_id,
                        "template": e.template_id,
                        "faces in image": e.n_faces,
                    }
                    for e in report.enrolled
                ]
            ),
            hide_index=True,
            key="enrolled_table",
        )
    if report.refused:
        st.error(f"Refused {plural(report.n_refused, 'file')}: nothing was stored for them.")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "file": shown(r.source),
                        "subject": r.subject_id,
                        # the message names the temporary copy of an upload; show its own name
                        "why": r.reason.replace(r.source, shown(r.source)),
                    }
                    for r in report.refused
                ]
            ),
            hide_index=True,
            key="refused_table",
        )


def _progress_bar(label: str):
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{label} {done}/{total}")

    return update


if "watchlist_message" in st.session_state:
    message = st.session_state.pop("watchlist_message")
    if message:
        st.success(message)
    report = st.session_state.pop("watchlist_report", None)
    if report is not None:
        _show_report(report, st.session_state.pop("watchlist_upload_names", None))

_shared.show_watchlist_summary(watchlist)
if watchlist.embedding_space and watchlist.embedding_space != engine.engine_id.recognizer_key:
    st.warning(
        f"This watchlist's templates come from `{watchlist.embedding_space}` but the app runs "
        f"`{engine.engine_id.recognizer_key}`: enrolment and search need the same recognizer. "
        "Start the app with the watchlist's engine, or use another workspace."
    )

enrol_tab, subjects_tab, bundles_tab, audit_tab = st.tabs(
    ["Enrol", "Subjects", "Import / export", "Audit log"]
)

# ---------------------------------------------------------------------- enrol
with enrol_tab:
    st.subheader("Enrol one person from photos")
    with st.form("enrol_upload", clear_on_submit=True):
        c1, c2 = st.columns(2)
        subject_id = c1.text_input(
            "Subject id", key="enrol_subject_id", help="Unique, e.g. a case reference."
        )
        display_name = c2.text_input("Display name (optional)", key="enrol_display_name")
        category = c1.selectbox(
            "Category", CATEGORIES, index=0, accept_new_options=True, key="enrol_category"
        )
        expiry_text = c2.text_input("Expiry", key="enrol_expiry", help=EXPIRY_HELP)
        reason = st.text_input("Reason for inclusion", key="enrol_reason")
        uploads = st.file_uploader(
            "Face photos (one face each)",
            type=["jpg", "jpeg", "png", "bmp", "webp"],
            accept_multiple_files=True,
            key="enrol_files",
        )
        c1, c2 = st.columns(2)
        largest = c1.checkbox(
            "Take the largest face of a group photo",
            key="enrol_largest",
            help="Otherwise a photo with several faces is refused.",
        )
        keep_image = c2.checkbox(
            "Keep the photos in the watchlist",
            key="enrol_keep_image",
            help="Off: only the template and the photo's sha256 are stored.",
        )
        submitted = st.form_submit_button("Enrol photos", type="primary")
    if submitted:
        try:
            if not subject_id.strip():
                raise LfrError("give a subject id before enrolling")
            if not uploads:
                raise LfrError("choose at least one photo to enrol")
            info = SubjectInfo(
                subject_id=subject_id.strip(),
                display_name=display_name.strip() or None,
                category=(category or "unspecified").strip(),
                reason=reason.strip(),
                expires=parse_expiry(expiry_text),
            )
            with _shared.uploads_on_disk(uploads) as paths:
                report = enrol_files(
                    watchlist, engine, info, list(paths),
                    largest_face=largest, keep_image=keep_image,
                    progress=_progress_bar("Analysing photos…"),
                )  # fmt: skip
                names = {str(p): name for p, name in paths.items()}
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            if report.enrolled:
                st.session_state["watchlist_upload_names"] = names
                _after_change("", report)
            else:
                _show_report(report, names)

    st.subheader("Enrol a folder (one sub-folder per person)")
    st.caption(
        "Each sub-folder's name is the subject id (`Jane_Doe/1.jpg` enrols subject `Jane_Doe`). "
        "The folder must be readable by the machine running the app, and inside the workspace "
        "or a folder the app was started with (`lfr-eval app --allow-root FOLDER`)."
    )
    with st.form("enrol_folder"):
        folder = st.text_input("Folder on the server", key="folder_path")
        c1, c2 = st.columns(2)
        folder_category = c1.selectbox(
            "Category", CATEGORIES, index=0, accept_new_options=True, key="folder_category"
        )
        folder_expiry = c2.text_input("Expiry", key="folder_expiry", help=EXPIRY_HELP)
        folder_reason = st.text_input("Reason for inclusion", key="folder_reason")
        folder_largest = st.checkbox("Take the largest face of a group photo", key="folder_largest")
        folder_submitted = st.form_submit_button("Enrol folder")
    if folder_submitted:
        try:
            if not folder.strip():
                raise LfrError("give the folder to enrol")
            report = enrol_folder(
                watchlist, engine, _shared.server_path(folder),
                category=(folder_category or "unspecified").strip(),
                reason=folder_reason.strip(),
                expires=parse_expiry(folder_expiry),
                largest_face=folder_largest,
                progress=_progress_bar("Analysing images…"),
            )  # fmt: skip
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            if report.enrolled:
                _after_change("", report)
            else:
                _show_report(report)

# ---------------------------------------------------------------------- subjects
with subjects_tab:
    subjects = watchlist.subjects()
    query = st.text_input(
        "Search subjects", key="subject_search", placeholder="id, name, category or reason"
    )
    table = pd.DataFrame(
        [
            {
                "subject": s.subject_id,
                "name": s.display_name,
                "category": s.category,
                "reason": s.reason,
                "templates": s.n_templates,
                "added (UTC)": s.created.strftime("%Y-%m-%d %H:%M"),
                "expires (UTC)": s.expires.strftime("%Y-%m-%d %H:%M") if s.expires else "never",
                "expired": s.is_expired(),
            }
            for s in subjects
        ],
        columns=[
            "subject", "name", "category", "reason", "templates", "added (UTC)",
            "expires (UTC)", "expired",
        ],
    )  # fmt: skip
    if query.strip():
        needle = query.strip().lower()
        text = table[["subject", "name", "category", "reason"]].astype(str)
        table = table[
            text.apply(lambda col: col.str.lower().str.contains(needle, regex=False)).any(axis=1)
        ]
    st.dataframe(table, hide_index=True, key="subjects_table")
    st.caption(f"{len(table)} of {plural(len(subjects), 'subject')} shown.")

    shown_ids = table["subject"].tolist()
    if shown_ids:
        st.subheader("Edit a subject")
        chosen = st.selectbox("Subject to edit", shown_ids, key="edit_subject")
        current = watchlist.subject(chosen)
        with st.form(f"edit_{chosen}"):
            c1, c2 = st.columns(2)
            new_category = c1.selectbox(
                "Category",
                sorted({*CATEGORIES, current.category}),
                index=sorted({*CATEGORIES, current.category}).index(current.category),
                accept_new_options=True,
                key=f"edit_category_{chosen}",
            )
            new_expiry = c2.text_input(
                "Expiry",
                value=current.expires.isoformat() if current.expires else "",
                help=EXPIRY_HELP,
                key=f"edit_expiry_{chosen}",
            )
            new_reason = st.text_input(
                "Reason for inclusion", value=current.reason, key=f"edit_reason_{chosen}"
            )
            save = st.form_submit_button("Save changes")
        if save:
            try:
                watchlist.update_subject(
                    chosen,
                    category=(new_category or current.category).strip(),
                    reason=new_reason.strip(),
                    expires=parse_expiry(new_expiry),
                )
            except LfrError as exc:
                _shared.show_error(exc)
            else:
                _after_change(f"Saved changes to {chosen}.")

        st.subheader("Remove subjects")
        to_remove = st.multiselect("Subjects to remove", shown_ids, key="remove_subjects")
        confirm = st.checkbox(
            "I understand their templates are deleted for good", key="remove_confirm"
        )
        if st.button("Remove selected", disabled=not (to_remove and confirm), key="remove_button"):
            try:
                removed = watchlist.remove_subjects(to_remove)
            except LfrError as exc:
                _shared.show_error(exc)
            else:
                _after_change(
                    f"Removed {plural(len(to_remove), 'subject')} and "
                    f"{plural(removed, 'template')}."
                )

        expired_ids = [s.subject_id for s in subjects if s.is_expired()]
        if expired_ids and st.button(
            f"Purge {plural(len(expired_ids), 'expired subject')}", key="purge_expired"
        ):
            purged = watchlist.purge_expired()
            _after_change(f"Purged {plural(len(purged), 'expired subject')}.")

# ---------------------------------------------------------------------- bundles
with bundles_tab:
    st.subheader("Export a bundle")
    st.caption(
        "A bundle is a verified zip of the watchlist (subjects, templates, hashes). Photos are "
        "included only if you ask and only if the watchlist kept them."
    )
    include_images = st.checkbox("Include stored photos", key="export_images")
    if st.button("Export bundle", key="export_bundle", disabled=len(watchlist) == 0):
        target = _shared.workspace() / "exports" / f"watchlist-{watchlist.content_hash()[:12]}.zip"
        try:
            info = watchlist.export_bundle(
                target,
                include_images=include_images,
                overwrite=True,
                signing_key=_shared.signing_key_or_none(),
            )
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            st.session_state["bundle_export"] = info.path
    exported = st.session_state.get("bundle_export")
    if exported and Path(exported).is_file():
        st.success(f"Bundle written to `{exported}`.")
        st.download_button(
            "Download bundle",
            Path(exported).read_bytes(),
            file_name=Path(exported).name,
            mime="application/zip",
            key="download_bundle",
        )

    st.subheader("Import a bundle")
    bundle_upload = st.file_uploader("Bundle (.zip)", type=["zip"], key="import_file")
    expected = st.text_input(
        "Expected content hash (optional)",
        key="import_expected",
        help="The hash you were given for this watchlist version through another channel.",
    )
    import_unsigned = st.checkbox(
        "Accept an unsigned bundle",
        key="import_unsigned",
        help="Only for a bundle whose origin you know: nothing proves who made it. A bundle "
        "signed with a key this installation does not trust is refused regardless.",
    )
    if st.button("Import bundle", key="import_bundle"):
        try:
            if bundle_upload is None:
                raise LfrError("choose a bundle file to import")
            with _shared.uploads_on_disk([bundle_upload]) as paths:
                info = import_bundle(
                    watchlist,
                    next(iter(paths)),
                    expected_content_hash=expected.strip() or None,
                    allow_unsigned=import_unsigned,
                )
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            _after_change(
                f"Imported {plural(info.n_subjects, 'subject')} and "
                f"{plural(info.n_templates, 'template')} "
                f"(bundle content hash {info.content_hash[:12]})."
            )

# ---------------------------------------------------------------------- audit
with audit_tab:
    entries = watchlist.audit_log(limit=500)
    st.caption(
        "Newest last; the last 500 entries. The log holds ids, categories and hashes, never names "
        "or biometrics."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "at (UTC)": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "action": e.action,
                    "subject": e.subject_id,
                    "template": e.template_id,
                    "by": e.actor,
                    "content hash after": e.content_hash[:12],
                    "details": json.dumps(e.details, sort_keys=True),
                }
                for e in entries
            ],
            columns=[
                "at (UTC)",
                "action",
                "subject",
                "template",
                "by",
                "content hash after",
                "details",
            ],
        ),
        hide_index=True,
        key="audit_table",
    )
