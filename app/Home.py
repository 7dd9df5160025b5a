"""LFR Workbench — Home: what the app is running on (engine, watchlist, results, retention)."""

from __future__ import annotations

import _shared
import pandas as pd
import streamlit as st

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
engine = _shared.engine_or_stop()
runtime = engine.runtime
cols = st.columns(4)
cols[0].metric("Backend", engine.engine_id.backend)
cols[1].metric("Runs on", "GPU" if runtime.gpu_active else "CPU")
cols[2].metric("Runtime", f"{runtime.name} {runtime.version}".strip())
cols[3].metric("Embedding size", engine.engine_id.embedding_dim)
st.caption(
    f"Started with: {_shared.engine_choice().describe()}. Runtime providers: "
    f"{', '.join(runtime.providers)} ({runtime.precision})."
)
st.dataframe(
    pd.DataFrame(
        [{"role": m.role, "file": m.name, "sha256": m.sha256} for m in engine.engine_id.models]
    ),
    hide_index=True,
)

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
