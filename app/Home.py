"""LFR Workbench — Home: what the app is running on (engine, watchlist, results, retention)."""

from __future__ import annotations

import _shared
import streamlit as st

from lfr_eval.errors import LfrError
from lfr_eval.faces import EngineLoading, FaceEngine


def show_engine(engine: FaceEngine, elapsed_s: float) -> None:
    """Backend, device, runtime and the model files with their hashes."""
    runtime = engine.runtime
    cols = st.columns(4)
    cols[0].metric("Backend", engine.engine_id.backend)
    cols[1].metric("Runs on", "GPU" if runtime.gpu_active else "CPU")
    cols[2].metric("Runtime", f"{runtime.name} {runtime.version}".strip())
    cols[3].metric("Embedding size", engine.engine_id.embedding_dim)
    st.caption(
        f"Started with: {_shared.engine_choice().describe()}. Runtime providers: "
        f"{', '.join(runtime.providers)} ({runtime.precision}); loaded in "
        f"{elapsed_s:.1f} s."
    )
    st.dataframe(
        [{"role": m.role, "file": m.name, "sha256": m.sha256} for m in engine.engine_id.models],
        hide_index=True,
    )


@st.fragment(run_every=1.0)
def engine_status(loading: EngineLoading) -> None:
    """While the engine loads: say so, look again every second, redraw the page once done."""
    if loading.done:
        st.rerun()
    st.info(
        f"Loading the face engine ({loading.choice.describe()}) in the background: "
        f"{loading.elapsed_s:.0f} s so far. The pages that need it (Live, Watchlist, Evaluate, "
        "Export) wait for it; the results pages do not."
    )


st.set_page_config(page_title="LFR Workbench", page_icon="🎯", layout="wide")
_shared.require_role()
st.title("LFR Workbench")
st.write(
    "Evaluate and demonstrate live facial recognition as police forces deploy it: every face "
    "passing a camera is searched against a watchlist, an alert fires when the similarity reaches "
    "the face-match threshold, and an officer reviews every alert. Similarities are **cosine "
    "similarities in [-1, 1]**; each engine needs its own threshold."
)

st.header("Engine in use")
# Filled last: the engine's load starts once the rest of the page is drawn (it would otherwise
# compete with drawing it for the interpreter), in a background thread; meanwhile this section
# says so and looks again every second.
engine_section = st.container()

st.header("Watchlist in use")
_shared.show_watchlist_summary()

st.header("Evaluation results")
_shared.show_results_summary()

st.header("Retention")
policy = _shared.retention_policy()
st.markdown(
    f"- **Non-matching captures are never stored**: a face that raises no alert is discarded "
    f"as soon as it has been searched.\n"
    f"- **Alert captures are kept {policy.alert_capture_hours} hours** for officer review, then "
    f"purged.\n"
    f"- Workspace (watchlists, results, alert captures): `{_shared.workspace()}`"
)

st.header("Pages")
st.markdown(
    "- **Live** — webcam demo: boxes, scores and alerts against the watchlist, officer review.\n"
    "- **Watchlist** — enrol faces from photos, edit categories, reasons and expiry; bundles; "
    "audit log.\n"
    "- **Evaluate** — run an evaluation protocol on a dataset, or load saved results.\n"
    "- **Threshold explorer** — for policy staff: what a threshold means in false alerts and "
    "missed people per deployment, overall and per group.\n"
    "- **Demographic report** — per-group error rates with intervals, ratios and tests.\n"
    "- **Export** — the chosen threshold, engine and watchlist as a verified deployment "
    "configuration."
)

loading = _shared.engine_loading()
with engine_section:
    if loading.done:
        try:
            show_engine(_shared.get_engine(), loading.elapsed_s)
        except LfrError as exc:  # the rest of Home works without an engine
            _shared.show_engine_error(exc)
    else:
        engine_status(loading)
