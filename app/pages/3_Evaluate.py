"""Evaluate: run an evaluation protocol on a dataset, or load saved results."""

from __future__ import annotations

from datetime import datetime, timezone

import _shared
import streamlit as st

from lfr_eval.datasets import EmbeddingCache, open_dataset
from lfr_eval.errors import LfrError
from lfr_eval.evaluation import evaluate
from lfr_eval.protocols import EnrolmentSettings, NplParams, OpenSetParams
from lfr_eval.report import headline_table, operating_thresholds
from lfr_eval.wording import plural

st.set_page_config(page_title="Evaluate · LFR Workbench", page_icon="🧪", layout="wide")
_shared.require_role(*_shared.ROLES_EVALUATE)
st.title("Evaluate")
st.write(
    "Run an open-set (NIST FRTE 1:N style) or NPL-style evaluation of the engine in use on your "
    "own images, or load results saved earlier. Every page then draws on the chosen results."
)

STAGES = {
    "hashing": "Hashing images",
    "embedding": "Detecting and embedding faces",
    "scoring": "Searching the watchlist",
    "scaling": "Scaling FPIR to other watchlist sizes",
}

if "evaluate_message" in st.session_state:
    st.success(st.session_state.pop("evaluate_message"))

current = None
try:
    current = _shared.current_results()
except LfrError as exc:
    _shared.show_error(exc)
st.subheader("Results in use")
_shared.show_results_summary(current)

load_tab, run_tab = st.tabs(["Load saved results", "Run an evaluation"])

with load_tab:
    saved = _shared.example_folders() + _shared.results_folders(
        _shared.workspace() / _shared.RESULTS_SUBDIR
    )
    examples = set(_shared.example_folders())
    if saved:
        choice = st.selectbox(
            "Saved results",
            saved,
            format_func=lambda p: f"example: {p.name}" if p in examples else p.name,
            key="load_choice",
        )
        if st.button("Load these results", key="load_saved", type="primary"):
            try:
                _shared.set_current_results(
                    _shared.load_results(choice, is_example=choice in examples)
                )
            except LfrError as exc:
                _shared.show_error(exc)
            else:
                st.rerun()
    else:
        st.info("No saved results yet: run an evaluation.")
    folder = st.text_input(
        "Or a results folder on the server",
        key="load_path",
        help="A folder written by 'lfr-eval evaluate' (result.json) or an aggregate "
        "(aggregate.json).",
    )
    if st.button("Load folder", key="load_folder", disabled=not folder.strip()):
        try:
            _shared.set_current_results(_shared.load_results(_shared.server_path(folder)))
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            st.rerun()

with run_tab:
    engine = _shared.engine_or_stop()
    st.caption(f"Engine: `{engine.engine_id.key}` on {engine.runtime.describe()}.")
    with st.form("evaluate"):
        source = st.text_input(
            "Dataset on the server",
            key="eval_source",
            help="A manifest (.csv/.parquet with path, subject_id and group columns), an LFW "
            "folder, or a folder with one sub-folder per person; inside the workspace or a "
            "folder the app was started with ('lfr-eval app --allow-root FOLDER').",
        )
        c1, c2, c3 = st.columns(3)
        layout = c1.selectbox("Layout", ["auto", "manifest", "lfw", "folder"], key="eval_layout")
        protocol_kind = c2.selectbox(
            "Protocol",
            ["open-set", "npl"],
            key="eval_protocol",
            format_func={
                "open-set": "open-set (watchlist + mated and non-mated searches)",
                "npl": "NPL-style (volunteers walking past, filler gallery)",
            }.get,
        )
        limit = c3.number_input(
            "At most this many images (whole people; 0 = all)",
            min_value=0,
            value=400,
            step=100,
            key="eval_limit",
            help="Embedding takes about a quarter of a second per image on a CPU.",
        )
        c1, c2 = st.columns(2)
        seed = c1.number_input("Seed", min_value=0, value=0, key="eval_seed")
        fraction = c2.slider(
            "Share of eligible people enrolled (or volunteers)",
            0.1,
            0.9,
            0.5,
            0.05,
            key="eval_fraction",
        )
        c1, c2 = st.columns(2)
        enrolment_failures = c1.selectbox(
            "A listed person whose enrolment images hold no usable face (failure to enrol)",
            ["nist", "exclude"],
            key="eval_enrolment_failures",
            format_func={
                "nist": "keep their searches, counted as misses (ISO/IEC 19795-1)",
                "exclude": "leave their searches out of FNIR",
            }.get,
            help="The failure-to-enrol rate, with its interval, is reported either way "
            "(lfr-eval evaluate --enrolment-failures).",
        )
        next_image = c2.checkbox(
            "Enrol such a person from their next usable image instead",
            key="eval_enrolment_next_image",
            help="That image then becomes their template, no longer a search "
            "(lfr-eval evaluate --enrolment-next-image).",
        )
        run = st.form_submit_button("Run evaluation", type="primary")
    if run:
        try:
            if not source.strip():
                raise LfrError("give the dataset to evaluate")
            # the same opening and face-choice rule as `lfr-eval evaluate`
            opened = open_dataset(
                str(_shared.server_path(source)),
                layout,
                limit=int(limit) if limit else None,
                seed=int(seed),
            )
            manifest = opened.manifest
            # A manifest may name images anywhere: they must be inside the roots too.
            for image in manifest.absolute_paths():
                _shared.server_path(str(image))
            for message in opened.warnings:
                st.warning(message)
            st.write(
                f"Dataset **{manifest.name}**: {plural(manifest.n_images, 'image')} of "
                f"{plural(manifest.n_subjects, 'person')}; groups: "
                f"{', '.join(manifest.attributes) or 'none'}."
            )
            if protocol_kind == "open-set":
                params = OpenSetParams(seed=int(seed), enrolled_fraction=float(fraction))
            else:
                params = NplParams(seed=int(seed), volunteer_fraction=float(fraction))
            bar = st.progress(0.0, text="Starting…")

            def progress(stage: str, done: int, total: int) -> None:
                label = STAGES.get(stage, stage)
                bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: {done:,}/{total:,}")

            cache = EmbeddingCache.in_workspace(_shared.workspace())
            try:
                result = evaluate(
                    manifest,
                    engine,
                    params,
                    cache=cache,
                    progress=progress,
                    face_choice=opened.face_choice,
                    enrolment=EnrolmentSettings(
                        failures=enrolment_failures, next_image=bool(next_image)
                    ),
                )
            finally:
                cache.close()
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            out = _shared.workspace() / _shared.RESULTS_SUBDIR / f"{manifest.name}-{stamp}"
            result.save(out)
            bar.progress(1.0, text="Computing intervals by group…")
            _shared.set_current_results(_shared.load_results(out))
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            st.session_state["evaluate_message"] = (
                f"Done: watchlist N = {result.watchlist_size:,}, {result.searches.n_mated:,} "
                f"mated and {result.searches.n_non_mated:,} non-mated searches; "
                f"{result.protocol.describe_enrolment()}. Saved in "
                f"`{out}`. The other pages now use these results."
            )
            st.rerun()

if current is not None:
    st.subheader("Summary at two operating points")
    thresholds = operating_thresholds(current.aggregate)
    if thresholds:
        st.caption(
            "Thresholds where overall FPIR first falls to 1 in 100 and 1 in 1,000 on these data "
            "(descriptive: chosen on the same data they describe); "
            f"{current.aggregate.intervals.describe()}, as in the report's first table."
        )
        # the report's own table (lfr_eval.plain's rules: no "0 (CI 0-x)", no unbounded number)
        st.dataframe(headline_table(current.aggregate, thresholds), hide_index=True,
                     key="eval_summary")
        st.caption("By group: see the **Demographic report** page.")
    else:
        st.caption("FPIR never falls to 1 in 100 on these data.")
    if current.path is not None:
        st.caption(f"Folder: `{current.path}`")
