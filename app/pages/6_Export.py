"""Export: the deployment configuration (threshold, engine, watchlist, retention, evidence).

Widget keys on this page are stable (the browser test drives them): ``export_threshold``,
``export_retention_hours``, ``export_approved_by``, ``export_notes``, ``export_evidence``,
``export_include_bundle``, ``export_button``, ``export_download_config``,
``export_download_bundle``; ``verify_upload``, ``verify_bundle_upload``, ``verify_unsigned``,
``verify_button``.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import _shared
import pandas as pd
import streamlit as st

from lfr_eval.deployment import (
    ConfigVerification,
    DeploymentConfig,
    RetentionPolicy,
    check_signature,
    evidence_from_results,
    export_config,
    make_config,
    parse_config,
    sign_config,
    verify_config,
)
from lfr_eval.errors import ConfigError, LfrError
from lfr_eval.signing import SignatureCheck
from lfr_eval.wording import plural

st.set_page_config(page_title="Export · LFR Workbench", page_icon="📦", layout="wide")
_shared.require_role(*_shared.ROLES_EXPORT)
st.title("Export a deployment configuration")
st.write(
    "A deployment configuration is what is signed off: the face-match threshold, the engine "
    "(every model file by sha256), the watchlist (id and content hash), the retention policy and "
    "the evaluation evidence behind the threshold. It is a JSON file checked against a schema "
    "and carrying its own hash; importing it checks every hash against what is running here and "
    "refuses any mismatch."
)

engine = _shared.engine_or_stop()
try:
    watchlist = _shared.open_watchlist()
    loaded = _shared.current_results()
except LfrError as exc:
    _shared.show_error(exc)
    st.stop()

export_tab, verify_tab = st.tabs(["Export", "Import and verify"])

# ---------------------------------------------------------------------- export
with export_tab:
    default = _shared.default_threshold(loaded.aggregate if loaded else None)
    threshold = st.number_input(
        "Face-match threshold (cosine similarity)",
        min_value=-1.0,
        max_value=1.0,
        value=float(default),
        step=0.0025,
        format="%.4f",
        key="export_threshold",
        help="Starts at the threshold chosen in the Threshold explorer, if any.",
    )
    c1, c2 = st.columns(2)
    retention_hours = c1.number_input(
        "Keep alert captures for (hours)",
        min_value=0,
        max_value=8760,
        value=_shared.retention_policy().alert_capture_hours,
        key="export_retention_hours",
        help="Non-matching captures are never stored, whatever this says.",
    )
    approved_by = c2.text_input("Approved by", key="export_approved_by")
    notes = st.text_area("Notes", key="export_notes", height=80)
    c1, c2 = st.columns(2)
    attach_evidence = c1.checkbox(
        "Attach the evaluation evidence",
        value=loaded is not None,
        disabled=loaded is None,
        key="export_evidence",
        help="FPIR and TPIR at the threshold, with intervals, from the results in use"
        + (f" ({loaded.label})." if loaded else " (none loaded)."),
    )
    include_bundle = c2.checkbox(
        "Export the watchlist bundle with it",
        key="export_include_bundle",
        help="A verified zip of the watchlist (templates, no photos), named in the config by "
        "sha256. Keep it beside the config.",
    )

    st.markdown(
        f"**Engine** `{engine.engine_id.key}` ({engine.runtime.describe()}) · **Watchlist** "
        f"`{watchlist.watchlist_id}`, {plural(len(watchlist), 'subject')}, content "
        f"`{watchlist.content_hash()[:12]}`"
    )
    if len(watchlist) == 0:
        st.warning(
            "The watchlist is empty: a deployment with it would never alert. Enrol people on the "
            "**Watchlist** page first, unless this is a dry run."
        )
    if loaded is None:
        st.warning("No evaluation results: the threshold would be exported without evidence.")
    elif attach_evidence:
        try:
            # what the exported config will record (make_config passes the watchlist's size)
            evidence = evidence_from_results(
                loaded.aggregate, float(threshold), deployed_watchlist_size=len(watchlist) or None
            )
        except LfrError as exc:
            st.warning(str(exc))
        else:
            st.markdown(f"**Evidence at {threshold:.4f}** ({loaded.label}), {evidence.describe()}.")
            if (
                len(watchlist)
                and len(watchlist) != evidence.watchlist_size
                and evidence.scaled_fpir is None
            ):
                st.caption(
                    f"The watchlist holds {plural(len(watchlist), 'person')}, the evaluation "
                    f"{evidence.watchlist_size:,}, and the results' scaling table holds no FPIR "
                    f"for N = {len(watchlist):,}: FPIR changes with N. The evidence records the "
                    "measured figures only."
                )

    try:
        signing_key = _shared.signing_key_or_none()
    except LfrError as exc:
        _shared.show_error(exc)
        st.stop()
    if signing_key is None:
        st.warning(
            "No signing key on this installation: the configuration would be exported "
            "**unsigned**, and verifying it anywhere then needs an explicit 'accept unsigned'. "
            'An administrator creates a key with `lfr-eval keys generate --name "Team"`.'
        )
    else:
        st.caption(
            f"Signed with key `{signing_key.public.key_id}` "
            f"({signing_key.public.name or 'unnamed'})."
        )
    if st.button("Export configuration", type="primary", key="export_button"):
        try:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            folder = _shared.workspace() / "exports" / f"deployment-{stamp}"
            bundle = None
            if include_bundle:
                bundle = folder / f"watchlist-{watchlist.content_hash()[:12]}.zip"
                watchlist.export_bundle(
                    bundle, include_images=False, overwrite=True, signing_key=signing_key
                )
            config = make_config(
                threshold=float(threshold),
                engine=engine,
                watchlist=watchlist,
                results=loaded.aggregate if (attach_evidence and loaded) else None,
                retention=RetentionPolicy(alert_capture_hours=int(retention_hours)),
                bundle=bundle,
                approved_by=approved_by.strip(),
                notes=notes.strip(),
            )
            if signing_key is not None:
                config = sign_config(config, signing_key)
            path = export_config(config, folder / "deployment_config.json")
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            st.session_state["export_last"] = (str(path), str(bundle) if bundle else None)
    last = st.session_state.get("export_last")
    if last and Path(last[0]).is_file():
        config_path = Path(last[0])
        st.success(f"Configuration written to `{config_path}`.")
        text = config_path.read_text(encoding="utf-8")
        st.download_button(
            "Download deployment_config.json",
            text,
            file_name="deployment_config.json",
            mime="application/json",
            key="export_download_config",
        )
        if last[1] and Path(last[1]).is_file():
            st.download_button(
                f"Download {Path(last[1]).name}",
                Path(last[1]).read_bytes(),
                file_name=Path(last[1]).name,
                mime="application/zip",
                key="export_download_bundle",
            )
        with st.expander("The configuration file"):
            st.json(json.loads(text))


# ---------------------------------------------------------------------- verify
def _find_results(config: DeploymentConfig) -> _shared.LoadedResults | None:
    """The saved results whose hash the config's evidence names (current ones first)."""
    if config.evidence is None:
        return None
    wanted = config.evidence.results_sha256
    folders = _shared.example_folders() + _shared.results_folders(
        _shared.workspace() / _shared.RESULTS_SUBDIR
    )
    candidates = [loaded] if loaded is not None else []
    examples = set(_shared.example_folders())
    for folder in folders:
        candidates.append(_shared.load_results(folder, is_example=folder in examples))
    for candidate in candidates:
        if candidate.aggregate.result_sha256 == wanted:
            return candidate
    return loaded


def _show_verification(
    config: DeploymentConfig, verification: ConfigVerification, signed: SignatureCheck
) -> None:
    st.success(
        f"Configuration verified: threshold {config.threshold:.4f}, every hash checked matches "
        f"(config sha256 `{verification.config_sha256[:12]}`); {signed.describe()}."
    )
    if not signed.signed:
        st.warning("Nothing proves who wrote this configuration: it is not signed.")
    st.dataframe(
        pd.DataFrame([{"field": c.field, "value": c.value} for c in verification.checked]),
        hide_index=True,
        key="verify_checked",
    )
    if verification.not_checked:
        st.warning(
            "Not checked (nothing here to compare with): " + ", ".join(verification.not_checked)
        )


with verify_tab:
    st.write(
        "Upload a configuration to check it against the engine, watchlist and results here. A "
        "file edited after export, or any artefact that differs, is refused with the field "
        "that differs."
    )
    upload = st.file_uploader("Deployment config (.json)", type=["json"], key="verify_upload")
    bundle_upload = st.file_uploader(
        "Its watchlist bundle (.zip), if it names one", type=["zip"], key="verify_bundle_upload"
    )
    verify_unsigned = st.checkbox(
        "Accept an unsigned configuration",
        key="verify_unsigned",
        help="Only for a file whose origin you know. A configuration signed with a key this "
        "installation does not trust is refused regardless.",
    )
    if st.button("Verify configuration", key="verify_button"):
        try:
            if upload is None:
                raise LfrError("choose a deployment config file to verify")
            config = parse_config(upload.getvalue(), source=upload.name)
            signed = check_signature(
                config, allow_unsigned=verify_unsigned, source=f"deployment config {upload.name}"
            )
            results = _find_results(config)
            with tempfile.TemporaryDirectory(prefix="lfr-verify-") as tmp:
                config_dir = None
                if bundle_upload is not None and config.watchlist.bundle_path:
                    (Path(tmp) / Path(config.watchlist.bundle_path).name).write_bytes(
                        bundle_upload.getvalue()
                    )
                    config_dir = tmp
                verification = verify_config(
                    config,
                    engine=engine,
                    watchlist=watchlist,
                    results=results.aggregate if results is not None else None,
                    config_dir=config_dir,
                )
        except ConfigError as exc:
            st.error(f"**Configuration refused.** {exc}")
        except LfrError as exc:
            _shared.show_error(exc)
        else:
            st.session_state[_shared.STATE_THRESHOLD] = config.threshold
            st.session_state[_shared.STATE_CONFIG] = config
            _show_verification(config, verification, signed)
