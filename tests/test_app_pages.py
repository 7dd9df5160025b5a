"""The Streamlit pages, driven headless with ``streamlit.testing`` (AppTest).

Every page must load on a fresh, empty workspace; the key interactions run against the real
default engine (dlib), real face images and real evaluation results.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from app_support import run_until_engine_shown

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"
PAGES = sorted(p.name for p in (APP / "pages").glob("[0-9]_*.py") if p.name != "1_Live.py")
TIMEOUT = 120


@pytest.fixture(autouse=True)
def app_env(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace and the default engine for every test; ``app/`` importable."""
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.setenv("LFR_WORKSPACE", str(workspace))
    for name in ("LFR_ENGINE", "LFR_DEVICE", "LFR_ALERT_RETENTION_HOURS"):
        monkeypatch.delenv(name, raising=False)
    return workspace


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real evaluation results: the project's shipped example, else a small LFW evaluation."""
    examples = sorted(p.parent for p in (REPO / "datasets" / "examples").glob("*/aggregate.json"))
    if examples:
        return examples[0]
    from conftest import lfw_root

    root = lfw_root()
    if root is None:
        pytest.skip("no example results in datasets/examples and no LFW to make some")
    from lfr_eval.datasets import load_lfw
    from lfr_eval.evaluation import evaluate
    from lfr_eval.faces import load_engine
    from lfr_eval.protocols import OpenSetParams

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_lfw(root)
        frame = manifest.frame
        first3 = frame.groupby("subject_id").cumcount().to_numpy() < 3
        many = frame["subject_id"].map(frame["subject_id"].value_counts()).to_numpy() >= 2
        keep = manifest.select(first3 & many).limit_subjects(150, seed=1)
        result = evaluate(keep, load_engine("dlib"), OpenSetParams(seed=0), n_resamples=0)
    out = tmp_path_factory.mktemp("results") / "lfw-small"
    result.save(out)
    return out


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(APP / "pages" / name), default_timeout=TIMEOUT)


def _use_results(at: AppTest, folder: Path) -> None:
    import _shared

    at.session_state["lfr_results"] = _shared.load_results(folder)


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table shown with all of ``columns`` (tables have no key to look them up by)."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _face_jpeg(insightface_images: Path) -> bytes:
    """One real face: the largest face of insightface's group photo, cropped with a margin."""
    image = cv2.imread(str(insightface_images / "t1.jpg"))
    from lfr_eval.faces import load_engine

    faces = load_engine("dlib").analyze(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), embed=False)
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)
    pad = (x2 - x1) // 2
    crop = image[max(y1 - pad, 0) : y2 + pad, max(x1 - pad, 0) : x2 + pad]
    return cv2.imencode(".jpg", crop)[1].tobytes()


# ---------------------------------------------------------------------- every page loads


def test_home_loads_on_a_fresh_workspace(workspace: Path) -> None:
    at = run_until_engine_shown(
        AppTest.from_file(str(APP / "Home.py"), default_timeout=TIMEOUT).run()
    )
    _no_exceptions(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Backend"] == "dlib"
    assert labels["Runs on"] == "CPU"
    assert labels["Subjects"] == "0"
    # model files are listed with their hashes
    models = at.dataframe[0].value
    assert set(models["role"]) >= {"recognizer", "landmarks"}
    assert models["sha256"].str.fullmatch("[0-9a-f]{64}").all()
    assert any("never stored" in m.value for m in at.markdown)


def test_home_shows_why_the_engine_cannot_load_and_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A load that fails in the background is shown on Home as the user's problem to fix; the
    rest of the page (watchlist, results, retention) is there all the same."""
    monkeypatch.setenv("LFR_DEVICE", "cuda")  # the dlib engine refuses a GPU
    at = run_until_engine_shown(
        AppTest.from_file(str(APP / "Home.py"), default_timeout=TIMEOUT).run()
    )
    _no_exceptions(at)
    assert any("CPU only" in e.value for e in at.error), [e.value for e in at.error]
    assert not any(m.label == "Backend" for m in at.metric)
    assert any(m.label == "Subjects" for m in at.metric)
    assert any("never stored" in m.value for m in at.markdown)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_on_a_fresh_workspace(page: str) -> None:
    at = _page(page).run()
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "each page has a title"


def test_first_launch_uses_the_shipped_example() -> None:
    import _shared

    examples = _shared.example_folders()
    if not examples:
        pytest.skip("no example results in datasets/examples yet")
    at = _page("4_Threshold_explorer.py").run()
    _no_exceptions(at)
    assert at.session_state["lfr_results"].is_example
    assert at.info and "false alerts" in at.info[0].value
    home = AppTest.from_file(str(APP / "Home.py"), default_timeout=TIMEOUT).run()
    assert any("example results" in c.value for c in home.caption)


@pytest.mark.parametrize(
    "page", ["4_Threshold_explorer.py", "5_Demographic_report.py", "3_Evaluate.py"]
)
def test_results_pages_render_real_results(page: str, results_dir: Path) -> None:
    at = _page(page)
    _use_results(at, results_dir)
    at.run()
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    assert at.metric and at.metric[0].label == "Watchlist size N"


def test_evaluate_page_summary_is_the_reports_first_table(results_dir: Path) -> None:
    """The Evaluate page's summary is the report's headline table (one function), rates
    with their interval in one cell by lfr_eval.plain's rules, not bare ci_low/ci_high
    columns ("0 (CI 0-x)") without the method named."""
    from lfr_eval.report import headline_table, operating_thresholds

    at = _page("3_Evaluate.py")
    _use_results(at, results_dir)
    at.run()
    _no_exceptions(at)
    agg = at.session_state["lfr_results"].aggregate
    shown = _frame(at, "FPIR (interval)", "FNIR (interval)")
    expected = headline_table(agg, operating_thresholds(agg))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected, check_dtype=False)
    assert not any("ci_low" in c for c in shown.columns)
    assert any(agg.intervals.describe() in c.value for c in at.caption)


@pytest.mark.lfw
def test_evaluate_page_offers_the_failure_to_enrol_options(
    lfw_dir: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listed person whose enrolment image holds no face: the page reports the failure to
    enrol and counts that person's searches as misses, leaves them out, or enrols the person
    from their next image, as `lfr-eval evaluate` does (the options were CLI-only)."""
    from test_cli_evaluate import _write_noise_jpeg
    from test_evaluate_lfw import small_lfw

    from lfr_eval.results import load_result

    monkeypatch.setenv("LFR_ALLOWED_ROOTS", str(lfw_dir))
    manifest = small_lfw(lfw_dir)
    frame = manifest.to_frame()
    frame["path"] = [str(p) for p in manifest.absolute_paths()]
    counts = frame.groupby("subject_id").size()
    listed = sorted(counts[counts >= 3].index)[:4]
    strangers = sorted(counts[counts == 1].index)[:8]
    noise = workspace / "noise.jpg"
    _write_noise_jpeg(noise, 5)
    rows = []
    for n, subject in enumerate(listed):
        images = frame[frame["subject_id"] == subject]["path"].tolist()[:3]
        if n == 0:  # its enrolment image is noise; its two real images are searches
            images = [str(noise), *images[:2]]
        rows += [(images[0], subject, "enrol")] + [(p, subject, "mated") for p in images[1:]]
    rows += [(frame[frame["subject_id"] == s]["path"].iloc[0], s, "non_mated") for s in strangers]
    csv = workspace / "fte.csv"
    pd.DataFrame(rows, columns=["path", "subject_id", "role"]).to_csv(csv, index=False)

    def evaluate_with(failures: str, next_image: bool):
        at = _page("3_Evaluate.py").run()
        at.text_input(key="eval_source").input(str(csv))
        at.number_input(key="eval_limit").set_value(0)
        at.selectbox(key="eval_enrolment_failures").set_value(failures)
        if next_image:
            at.checkbox(key="eval_enrolment_next_image").check()
        at.button(key="FormSubmitter:evaluate-Run evaluation").click().run()
        _no_exceptions(at)
        assert not at.error, [e.value for e in at.error]
        loaded = at.session_state["lfr_results"]
        assert loaded.path is not None
        return load_result(loaded.path), at

    nist, at = evaluate_with("nist", False)
    assert nist.protocol.enrolment is not None and nist.protocol.enrolment.failed == 1
    assert any("count as misses" in s.value for s in at.success)
    excluded, _ = evaluate_with("exclude", False)
    assert excluded.protocol.enrolment.policy == "exclude"
    assert excluded.searches.n_mated == nist.searches.n_mated - 2
    rescued, _ = evaluate_with("nist", True)
    assert (rescued.protocol.enrolment.failed, rescued.protocol.enrolment.next_image) == (0, 1)
    assert rescued.watchlist_size == nist.watchlist_size + 1


# ---------------------------------------------------------------------- watchlist


def test_enrol_an_upload_and_see_it_listed(insightface_images: Path) -> None:
    at = _page("2_Watchlist.py").run()
    at.text_input(key="enrol_subject_id").input("case-17")
    at.text_input(key="enrol_reason").input("training demo")
    at.text_input(key="enrol_expiry").input("7d")
    blank = cv2.imencode(".png", np.full((240, 240, 3), 127, np.uint8))[1].tobytes()
    at.file_uploader(key="enrol_files").set_value(
        [
            ("face.jpg", _face_jpeg(insightface_images), "image/jpeg"),
            ("wall.png", blank, "image/png"),
        ]
    )
    at.button(key="FormSubmitter:enrol_upload-Enrol photos").click().run()
    _no_exceptions(at)
    subjects = _frame(at, "subject", "templates")
    assert subjects["subject"].tolist() == ["case-17"]
    assert subjects["reason"].tolist() == ["training demo"]
    assert subjects["templates"].tolist() == [1]
    assert subjects["expires (UTC)"].iloc[0] != "never"
    refused = _frame(at, "file", "why")
    assert refused["file"].tolist() == ["wall.png"]
    # the reason names the upload, not the temporary copy the engine read
    assert refused["why"].iloc[0] == "no face found in wall.png"
    assert {m.label: m.value for m in at.metric}["Subjects"] == "1"
    audit = _frame(at, "action", "content hash after")
    assert "add_subject" in set(audit["action"])
    # uploads are not left on disk
    assert not list(Path("/tmp").glob("lfr-upload-*/0/face.jpg"))


def test_no_face_upload_is_refused_with_its_reason() -> None:
    at = _page("2_Watchlist.py").run()
    at.text_input(key="enrol_subject_id").input("case-18")
    blank = cv2.imencode(".png", np.full((200, 200, 3), 90, np.uint8))[1].tobytes()
    at.file_uploader(key="enrol_files").set_value([("blank.png", blank, "image/png")])
    at.button(key="FormSubmitter:enrol_upload-Enrol photos").click().run()
    _no_exceptions(at)
    assert any("Refused 1 file" in e.value for e in at.error)
    assert _frame(at, "file", "why")["why"].tolist() == ["no face found in blank.png"]
    assert _frame(at, "subject", "templates").empty


def test_edit_and_remove_a_subject(insightface_images: Path, workspace: Path) -> None:
    from lfr_eval.faces import load_engine
    from lfr_eval.watchlist import SubjectInfo, Watchlist

    image = workspace / "face.jpg"
    image.write_bytes(_face_jpeg(insightface_images))
    Watchlist.open(workspace=workspace).enrol_files(
        load_engine("dlib"), SubjectInfo("case-19", category="missing person"), [image]
    )
    at = _page("2_Watchlist.py").run()
    at.text_input(key="edit_reason_case-19").input("found safe")
    at.button(key="FormSubmitter:edit_case-19-Save changes").click().run()
    _no_exceptions(at)
    assert _frame(at, "subject", "templates")["reason"].tolist() == ["found safe"]
    at.multiselect(key="remove_subjects").select("case-19")
    at.checkbox(key="remove_confirm").check().run()
    at.button(key="remove_button").click().run()
    _no_exceptions(at)
    assert _frame(at, "subject", "templates").empty
    assert "remove_subject" in set(_frame(at, "action", "content hash after")["action"])


# ---------------------------------------------------------------------- threshold explorer


def _expected_false_alerts(at: AppTest) -> float:
    """The metric's number; an upper bound ("at most X") reads as X, a range beyond the
    fillers measured ("a–b") as its high end, a figure the data cannot bound ("not bounded")
    as infinity."""
    text = {m.label: m.value for m in at.metric}["Expected false alerts"]
    if text == "not bounded":
        return float("inf")
    return float(text.removeprefix("at most ").split("–")[-1].replace(",", ""))


def test_slider_moves_the_expected_false_alerts(results_dir: Path) -> None:
    at = _page("4_Threshold_explorer.py")
    _use_results(at, results_dir)
    at.run()
    slider = at.slider(key="explorer_threshold")
    low = slider.min
    at.slider(key="explorer_threshold").set_value(low).run()
    at.selectbox(key="explorer_watchlist_size").set_value(10_000).run()
    at.number_input(key="explorer_faces").set_value(30_000).run()
    _no_exceptions(at)
    at_low = _expected_false_alerts(at)
    sentence = at.info[0].value
    assert sentence.startswith(f"At {low:.2f}".rstrip("0")[:4])
    assert "10,000-person watchlist and 30,000 faces per deployment" in sentence
    # N = 10,000 is beyond the example's fillers: a range, said to be one, not an estimate
    assert "false alerts (a range, not an estimate" in sentence and "of listed people" in sentence
    at.slider(key="explorer_threshold").set_value(slider.max).run()
    at_high = _expected_false_alerts(at)
    assert at_high < at_low
    # the three false alert rates are shown side by side, each labelled
    labels = [m.label for m in at.metric]
    assert "false alerts ÷ faces scanned" in labels
    assert "false alerts ÷ all alerts" in labels
    assert any(label.startswith("FPIR at N = 10,000") for label in labels)
    # the claim checker gives a verdict
    assert any("support" in m.value for m in [*at.success, *at.warning])


def test_bigger_watchlist_means_more_false_alerts(results_dir: Path) -> None:
    at = _page("4_Threshold_explorer.py")
    _use_results(at, results_dir)
    at.run()
    # exactly the sizes scaled_fpir has a figure for: the evaluated one and the table's
    agg = at.session_state["lfr_results"].aggregate
    from lfr_eval.explain import offered_watchlist_sizes

    sizes = at.selectbox(key="explorer_watchlist_size").options
    assert [int(n.replace(",", "")) for n in sizes] == list(offered_watchlist_sizes(agg))
    assert 1_000 in offered_watchlist_sizes(agg) and 100_000 in offered_watchlist_sizes(agg)
    at.selectbox(key="explorer_watchlist_size").set_value(1_000).run()
    small = _expected_false_alerts(at)
    at.selectbox(key="explorer_watchlist_size").set_value(100_000).run()
    _no_exceptions(at)
    assert _expected_false_alerts(at) >= small
    # below the scaling table's grid another N has no figure: the slider starts at the table
    floor = min(agg.scaling.loc[agg.scaling["method"] == "analytic", "threshold"])
    assert at.slider(key="explorer_threshold").min >= floor - 1e-9


def test_demographic_report_downloads_html(results_dir: Path) -> None:
    at = _page("5_Demographic_report.py")
    _use_results(at, results_dir)
    at.run()
    _no_exceptions(at)
    assert _frame(at, "group", "FPIR")["group"].size >= 2
    at.button(key="report_build").click().run()
    html = at.session_state["report_html"]
    assert html.startswith("<!DOCTYPE html>") or "<html" in html[:500]


def test_demographic_report_tests_groups_on_each_persons_counts(tmp_path: Path) -> None:
    """Full results hold each person's counts: the page's p-value is the frame's null
    bootstrap test over people (one function: group_comparison ->
    IdentificationFrame.compare_groups), and the page says which test ran; from an aggregate
    alone the same test from its sums over people (same p-value), and Rao-Scott, saying why,
    from an aggregate written before those sums were kept."""
    import dataclasses

    from test_results import synthetic_result

    from lfr_eval.explain import (
        WHY_NULL_BOOTSTRAP,
        WHY_NULL_BOOTSTRAP_AGGREGATE,
        WHY_RAO_SCOTT,
        group_comparison,
    )
    from lfr_eval.metrics._people_sums import PEOPLE_SUMS_COLUMNS
    from lfr_eval.report import as_aggregate

    def page_on(folder: Path) -> tuple[AppTest, str, str]:
        """The page run on ``folder``: the app, its captions and its markdown as text."""
        at = _page("5_Demographic_report.py")
        _use_results(at, folder)
        at.run()
        _no_exceptions(at)
        captions = " ".join(c.value for c in at.caption)
        return at, captions, " ".join(m.value for m in at.markdown)

    result = synthetic_result(with_scaling=False)
    at, captions, text = page_on(result.save(tmp_path / "full"))
    assert WHY_NULL_BOOTSTRAP in captions and WHY_RAO_SCOTT not in captions
    agg = at.session_state["lfr_results"].aggregate
    t = float(at.select_slider(key="report_threshold").value)
    attribute = str(at.selectbox(key="report_attribute").value)
    frame = result.identification_frame([t], [attribute])
    expected = group_comparison(agg, t, attribute, "fpir", frame=frame)
    assert expected.extreme_pair is not None
    direct = frame.compare_groups("fpir", t).pair(
        expected.extreme_pair.group_a, expected.extreme_pair.group_b
    )
    assert direct.p_adjusted == expected.extreme_pair.p_adjusted
    assert f"p = {direct.p_adjusted:.3g} (null bootstrap test over people" in text
    assert "family-wise" in text
    # the page names the adjustment that produced the p-value (step-down by default)
    assert expected.pairs is not None and expected.pairs.adjustment == "step-down"
    assert "(step-down)" in text and expected.pairs.adjustment_text in captions

    # from the aggregate alone: the same test from its sums over people, the same p-value
    _, captions, text = page_on(as_aggregate(result).save(tmp_path / "aggregate-only"))
    assert WHY_NULL_BOOTSTRAP_AGGREGATE in captions and WHY_RAO_SCOTT not in captions
    assert "step-down max-statistic adjustment" in captions
    assert f"p = {direct.p_adjusted:.3g} (null bootstrap test over people" in text
    assert "from the aggregate's sums" in text

    # an aggregate written before the sums were kept: Rao-Scott, and the page says why
    old = tmp_path / "aggregate-old"
    stale = as_aggregate(result)
    kept = [c for c in stale.rates.columns if c not in PEOPLE_SUMS_COLUMNS]
    _, captions, text = page_on(dataclasses.replace(stale, rates=stale.rates[kept]).save(old))
    assert WHY_RAO_SCOTT in captions and WHY_NULL_BOOTSTRAP_AGGREGATE not in captions
    assert "Rao–Scott design-effect test from the aggregate" in text


# ---------------------------------------------------------------------- export and verify


def _export(at: AppTest, threshold: float | None = None) -> tuple[Path, Path | None]:
    if threshold is not None:
        at.number_input(key="export_threshold").set_value(threshold)
    at.text_input(key="export_approved_by").input("Insp. Example")
    at.checkbox(key="export_include_bundle").check()
    at.button(key="export_button").click().run()
    _no_exceptions(at)
    assert not at.error, [e.value for e in at.error]
    config, bundle = at.session_state["export_last"]
    return Path(config), Path(bundle) if bundle else None


def _verify(at: AppTest, text: bytes, bundle: Path | None = None) -> None:
    at.file_uploader(key="verify_upload").set_value(("config.json", text, "application/json"))
    if bundle is not None:
        at.file_uploader(key="verify_bundle_upload").set_value(
            (bundle.name, bundle.read_bytes(), "application/zip")
        )
    at.button(key="verify_button").click().run()
    _no_exceptions(at)


def test_export_config_then_verify_ok(results_dir: Path) -> None:
    from lfr_eval.deployment import load_config
    from lfr_eval.signing import KeyRing

    KeyRing().generate("Evaluation team")
    at = _page("6_Export.py")
    _use_results(at, results_dir)
    at.run()
    agg = at.session_state["lfr_results"].aggregate
    threshold = float(agg.thresholds[len(agg.thresholds) // 2])
    config_path, bundle = _export(at, threshold)
    config = load_config(config_path)
    assert config.threshold == pytest.approx(threshold)
    assert config.approved_by == "Insp. Example"
    assert config.evidence is not None and config.evidence.threshold == config.threshold
    assert config.watchlist.bundle_sha256 is not None and bundle is not None and bundle.is_file()
    assert config.signature is not None and config.signature.signer == "Evaluation team"
    _verify(at, config_path.read_bytes(), bundle)
    assert any(s.value.startswith("Configuration verified") for s in at.success)
    assert any("signed by 'Evaluation team'" in s.value for s in at.success)
    checked = set(_frame(at, "field", "value")["field"])
    assert {
        "watchlist.content_sha256",
        "evidence.results_sha256",
        "watchlist.bundle.sha256",
    } <= checked


def test_unsigned_config_needs_an_explicit_accept(results_dir: Path) -> None:
    at = _page("6_Export.py")
    _use_results(at, results_dir)
    at.run()
    assert any("unsigned" in w.value for w in at.warning)
    config_path, _ = _export(at)
    _verify(at, config_path.read_bytes())
    assert any("is not signed" in e.value for e in at.error)
    assert not any(s.value.startswith("Configuration verified") for s in at.success)
    at.checkbox(key="verify_unsigned").check()
    _verify(at, config_path.read_bytes())
    assert any(s.value.startswith("Configuration verified") for s in at.success)
    assert any("not signed" in w.value for w in at.warning)


def test_tampered_config_is_refused(results_dir: Path) -> None:
    at = _page("6_Export.py")
    _use_results(at, results_dir)
    at.run()
    config_path, _ = _export(at)
    document = json.loads(config_path.read_text())
    document["retention"]["alert_capture_hours"] = 720
    _verify(at, json.dumps(document).encode())
    assert any("has been changed since it was exported" in e.value for e in at.error)
    assert not any(s.value.startswith("Configuration verified") for s in at.success)


def test_config_for_a_changed_watchlist_is_refused(
    results_dir: Path, insightface_images: Path, workspace: Path
) -> None:
    from lfr_eval.faces import load_engine
    from lfr_eval.signing import KeyRing
    from lfr_eval.watchlist import Watchlist

    KeyRing().generate("Evaluation team")
    at = _page("6_Export.py")
    _use_results(at, results_dir)
    at.run()
    config_path, _ = _export(at)
    image = workspace / "face.jpg"
    image.write_bytes(_face_jpeg(insightface_images))
    Watchlist.open(workspace=workspace).enrol_files(load_engine("dlib"), "late-addition", [image])
    _verify(at, config_path.read_bytes())
    assert any("watchlist.content_sha256" in e.value for e in at.error)


def test_not_json_is_refused_clearly() -> None:
    at = _page("6_Export.py").run()
    _verify(at, b"threshold = 0.6")
    assert any("is not valid JSON" in e.value for e in at.error)


def test_app_command_starts_streamlit_on_home(workspace: Path) -> None:
    from click.testing import CliRunner

    from lfr_eval.cli import cli

    result = CliRunner().invoke(cli, ["app", "--check", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    assert "streamlit run" in result.output and str(APP / "Home.py") in result.output
    assert f"LFR_WORKSPACE={workspace.resolve()}" in result.output
    assert sys.executable in result.output
