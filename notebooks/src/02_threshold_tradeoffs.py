# %% [markdown]
# # 02 · Choosing a threshold: what it means for a deployment
#
# For policy staff who must choose a face-match threshold and defend it. A threshold is a
# cosine similarity; on its own the number says nothing. What matters is what it does on a
# deployment:
#
# * **how many false alerts to expect** for a given number of faces scanned and a given
#   watchlist size (a bigger watchlist at the same threshold gives more false alerts);
# * **what share of the listed people who walk past are flagged** — overall and per group;
# * which of the three different "false alert rates" a quoted figure is.
#
# The notebook then picks a threshold by a stated rule on one half of the people, checks it on
# the other half, and exports it with the watchlist as a **deployment configuration** that
# names the engine, the watchlist and the evaluation behind it.
#
# The figures come from an NPL-style evaluation on LFW with the workbench's default engine
# (notebook 01 explains the design and how it differs from NPL's). LFW is press photographs,
# not crowds on a street: the *method* carries over to your own evaluation data, the numbers
# do not. Every number is computed when the notebook runs; the committed file has no outputs.

# %% tags=["parameters"]
# Parameters. Environment variables, where set, override them (CI runs a subset this way):
# LFR_LFW_DIR, LFR_NB_DATA, LFR_NB_ENGINE, LFR_NB_SUBSET, LFR_NB_WORKERS, LFR_WORKSPACE.
import os

LFW_DIR = os.environ.get("LFR_LFW_DIR", "../../shared/datasets/lfw")  # LFW, either layout
DATA = os.environ.get("LFR_NB_DATA") or None  # or a manifest CSV/Parquet or a folder per person
ENGINE = os.environ.get("LFR_NB_ENGINE", "dlib")  # "dlib", "insightface" or "dlib-torch"
SUBSET = int(os.environ.get("LFR_NB_SUBSET", "0")) or None  # max images (whole people); None: all
WORKERS = int(os.environ.get("LFR_NB_WORKERS", "2"))  # processes embedding images
WORKSPACE = os.environ.get("LFR_WORKSPACE") or None  # cache, results, exports; None: default
SEED = 0
MAX_SEARCHES_PER_PERSON = 10  # as in notebook 01 (NPL's volunteers passed ~10 times each)

WATCHLIST_SIZES = [1_000, 10_000]  # people on the deployment's watchlist
FACES_SCANNED = [5_000, 30_000, 100_000, 1_000_000]  # faces per deployment
DEPLOY_WATCHLIST = 10_000  # the deployment this notebook's headline figures are for
DEPLOY_FACES = 30_000
LISTED_PASSERS_BY = 3  # listed people walking past per deployment: a scenario, not a measurement
TARGET_TPIR = 0.80  # threshold rule: the highest threshold still flagging this share of listed people
THRESHOLD = None  # or a number to use instead of the rule

# %% [markdown]
# ## 1. The evaluation behind the figures

# %%
import functools

import numpy as np
import pandas as pd
import plotly.io as pio
from IPython.display import display
from plotly.subplots import make_subplots

from lfr_eval.datasets import EmbeddingCache, load_dataset_subset
from lfr_eval.deployment import (
    evidence_from_results,
    export_config,
    load_config,
    make_config,
    verify_config,
)
from lfr_eval.evaluation import evaluate
from lfr_eval.explain import (
    explain_by_group,
    explain_threshold,
    explanation_table,
    false_alert_rates_table,
    scaling_threshold_floor,
)
from lfr_eval.faces import load_engine
from lfr_eval.metrics import choose_threshold
from lfr_eval.operational import FalseAlertRates, one_in_n
from lfr_eval.plain import interval_cell
from lfr_eval.protocols import NplParams, build_npl_protocol
from lfr_eval.report import AggregateResult
from lfr_eval.watchlist import SubjectInfo, Watchlist
from lfr_eval.workspace import workspace_dir

pio.renderers.default = "plotly_mimetype+notebook"
pd.set_option("display.width", 120)
pd.set_option("display.float_format", "{:.4g}".format)

# With SUBSET, spread the budget over more people: at most MAX_SEARCHES_PER_PERSON + 1 images each.
manifest = load_dataset_subset(
    DATA, LFW_DIR, subset=SUBSET, seed=SEED, max_images_per_subject=MAX_SEARCHES_PER_PERSON + 1
)

engine = load_engine(ENGINE)
params = NplParams(seed=SEED, volunteer_fraction=0.25, filler_fraction=0.5,
                   max_mated_per_subject=MAX_SEARCHES_PER_PERSON,
                   max_non_mated_per_subject=MAX_SEARCHES_PER_PERSON)
result = evaluate(
    manifest, engine, params, cache=EmbeddingCache.in_workspace(WORKSPACE), face_choice="central",
    workers=WORKERS, engine_factory=functools.partial(load_engine, ENGINE),
    watchlist_sizes=WATCHLIST_SIZES,
)
results_dir = result.save(
    workspace_dir(WORKSPACE) / "results" / f"nb02-{result.dataset.sha256[:12]}"
)
searches = result.searches
print(f"{manifest.name}: {manifest.n_images:,} images of {manifest.n_subjects:,} people")
print(f"evaluated watchlist N = {result.watchlist_size:,}; mated searches {searches.n_mated:,}; "
      f"non-mated searches {searches.n_non_mated:,}")
print(f"results saved to {results_dir} (sha256 {result.result_hash[:16]}…)")

# %% [markdown]
# ## 2. Choosing the threshold — on one half of the people, checked on the other
#
# The rule here: **the highest threshold that still flags `TARGET_TPIR` of listed people**
# (forces have chosen thresholds this way: NPL reported 89% at the police setting). It is
# fitted on a random half of the people ("dev") and reported on the other half ("eval"), so
# the reported figures are not flattered by the choice. Set `THRESHOLD` to override. The
# intervals are clustered by person (design-effect Jeffreys, the workbench default: a person's
# repeat searches are not independent), as everywhere else in the workbench.
#
# A TPIR rule says nothing about false alerts: section 3 shows what the chosen threshold costs.
# If the cost is too high, the answer is a stricter threshold (fewer listed people flagged), a
# smaller watchlist, or a better engine — not a different reading of the same numbers.

# %%
rng = np.random.default_rng(SEED)
people = np.unique(np.concatenate([searches.mated_subjects, searches.non_mated_subjects]))
dev_people = set(rng.choice(people, size=len(people) // 2, replace=False))
in_dev_mated = np.isin(searches.mated_subjects, list(dev_people))
in_dev_non_mated = np.isin(searches.non_mated_subjects, list(dev_people))
dev = searches.subset(in_dev_mated, in_dev_non_mated)
held_out = searches.subset(~in_dev_mated, ~in_dev_non_mated)
choice = choose_threshold("tpir", dev, held_out, target=TARGET_TPIR)

# Thresholds are reported on a 0.0025 grid (what the app's slider and the aggregate use).
GRID = 0.0025
chosen = THRESHOLD if THRESHOLD is not None else np.floor(choice.threshold / GRID) * GRID
chosen = round(float(chosen), 4)
print(f"rule: TPIR >= {TARGET_TPIR:.0%}; fitted on dev: {choice.threshold:.4f}; "
      f"on the grid: {chosen}" + (" (THRESHOLD set by hand)" if THRESHOLD is not None else ""))
# intervals clustered by person (each estimate's `method` names how), written by the
# plain-language rules of the report and the app (an upper bound when nothing was seen)
points = (choice.dev, choice.eval)
pd.DataFrame(
    {
        "people": [len(dev_people), len(people) - len(dev_people)],
        "TPIR": [p.tpir.rate for p in points],
        "TPIR 95% CI": [interval_cell(p.tpir.rate, p.tpir.ci_low, p.tpir.ci_high,
                                      errors=p.tpir.errors) for p in points],
        f"FPIR at N = {result.watchlist_size:,}": [p.fpir.rate for p in points],
        "FPIR 95% CI": [interval_cell(p.fpir.rate, p.fpir.ci_low, p.fpir.ci_high,
                                      errors=p.fpir.errors) for p in points],
        "interval method": [p.fpir.method for p in points],
    },
    index=["dev (threshold fitted)", "eval (held out)"],
)

# %% [markdown]
# ## 3. Expected false alerts per deployment, threshold by threshold
#
# FPIR is measured at the evaluated watchlist size and, for the deployment's, read from the
# results' watchlist-size scaling table (`lfr_eval.protocols.scaled_fpir`: the exact expectation
# of drawing N of the fillers, clustered intervals; the same figure as the report and the app).
# Expected false alerts = faces of people not listed × FPIR. Intervals are 95% and clustered
# by **people**, not images.

# %%
span = np.round(np.arange(chosen - 16 * GRID, chosen + 16 * GRID + 1e-9, GRID), 4)
agg = AggregateResult.from_result(result, thresholds=np.union1d(span, [chosen]),
                                  attributes=["sex"], seed=SEED)
# Another watchlist size has a figure only from the scaling table's lowest threshold up (the
# app's explorer starts its slider there too); the evaluated size goes down the whole grid.
floor = scaling_threshold_floor(agg)


def _thresholds_for(n):
    if n == agg.watchlist_size or floor is None:
        return agg.thresholds
    return [t for t in agg.thresholds if t >= floor - 1e-9]


explorer = {
    n: [explain_threshold(agg, t, watchlist_size=n, faces_scanned=DEPLOY_FACES,
                          listed_passers_by=LISTED_PASSERS_BY) for t in _thresholds_for(n)]
    for n in WATCHLIST_SIZES
}
fig = make_subplots(specs=[[{"secondary_y": True}]])
for n, rows in explorer.items():
    x = [e.threshold for e in rows]
    fig.add_scatter(x=x, y=[e.expected_ci_high for e in rows], line_width=0, showlegend=False,
                    hoverinfo="skip")
    fig.add_scatter(x=x, y=[e.expected_ci_low for e in rows], line_width=0, fill="tonexty",
                    showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=x, y=[e.expected_false_alerts for e in rows], mode="lines",
                    name=f"false alerts, N = {n:,}")
tp = explorer[WATCHLIST_SIZES[0]]
fig.add_scatter(x=[e.threshold for e in tp], y=[e.tpir.rate for e in tp], mode="lines",
                line_dash="dash", name="share of listed people flagged (TPIR)", secondary_y=True)
fig.add_vline(x=chosen, line_dash="dot", annotation_text=f"chosen {chosen}")
fig.update_yaxes(type="log", title_text=f"expected false alerts per {DEPLOY_FACES:,} faces",
                 secondary_y=False)
fig.update_yaxes(range=[0, 1], title_text="TPIR", secondary_y=True)
fig.update_layout(title="Threshold trade-off", xaxis_title="threshold (cosine similarity)")
display(fig)

# %%
table = explanation_table([e for e in explorer[DEPLOY_WATCHLIST] if e.threshold in span[::4]
                           or e.threshold == chosen])
table.insert(0, "threshold", [e.threshold for e in explorer[DEPLOY_WATCHLIST]
                              if e.threshold in span[::4] or e.threshold == chosen])
table.drop(columns=["group", "small group"])

# %% [markdown]
# ## 4. The chosen threshold against faces scanned and watchlist size

# %%
grid_rows = []
for n in WATCHLIST_SIZES:
    for faces in FACES_SCANNED:
        e = explain_threshold(agg, chosen, watchlist_size=n, faces_scanned=faces,
                              listed_passers_by=0)
        # plain-language rules: "not bounded" where these data cannot bound the figure
        alerts = e.false_alerts_figure()
        grid_rows.append({"watchlist": n, "faces scanned": faces,
                          "expected false alerts": alerts.value_text,
                          "95% CI": alerts.interval_text})
headline = explain_threshold(agg, chosen, watchlist_size=DEPLOY_WATCHLIST,
                             faces_scanned=DEPLOY_FACES, listed_passers_by=LISTED_PASSERS_BY)
print(headline.sentence())
if headline.expected_ci_low > 1:
    print(f"Even the lower 95% bound is {headline.expected_ci_low:,.1f} false alerts per "
          f"deployment: at a threshold that flags {TARGET_TPIR:.0%} of listed people, this "
          f"engine is not fit for a {DEPLOY_WATCHLIST:,}-person watchlist.")
pd.DataFrame(grid_rows).set_index(["watchlist", "faces scanned"])

# %% [markdown]
# ## 5. The share of listed people flagged, overall and by sex
#
# TPIR is the share of mated searches whose mate is the top candidate at or above the
# threshold. Groups with few people are flagged; treat them with caution (notebook 03 goes
# further into group differences).

# %%
by_sex = explain_by_group(agg, chosen, "sex", watchlist_size=DEPLOY_WATCHLIST,
                          faces_scanned=DEPLOY_FACES, listed_passers_by=LISTED_PASSERS_BY)
for e in by_sex:
    print("•", e.sentence())
explanation_table(by_sex)

# %% [markdown]
# ## 6. Three different "false alert rates" — side by side
#
# 1. **false alerts ÷ faces scanned** — what forces publish;
# 2. **FPIR** — false positives ÷ non-mated searches, tied to the watchlist size and threshold
#    (what NPL, NIST and ISO measure);
# 3. **false alerts ÷ all alerts** (1 − precision) — depends on how many listed people walk
#    past; the figure critics quote.
#
# The same system gives very different numbers on each. Below: our chosen threshold under
# three scenarios for how many listed people pass, and the Met's published 2024–25 counts
# (3,147,436 faces, 2,077 alerts, 10 false; domain brief, section 4) — which fix rates 1 and 3
# but not FPIR, since forces do not publish how many listed people walked past.

# %%
side_by_side = {}
for listed in (0, LISTED_PASSERS_BY, 30):
    e = explain_threshold(agg, chosen, watchlist_size=DEPLOY_WATCHLIST,
                          faces_scanned=DEPLOY_FACES, listed_passers_by=listed)
    rates = false_alert_rates_table(e).set_index("rate")
    # "as 1 in N" is a range beyond the fillers measured (no single value), "—" where the
    # inputs do not fix the rate
    side_by_side[f"this engine at {chosen}, {listed} listed passers-by"] = pd.Series({
        name: (row["as 1 in N"] if np.isnan(row["value"]) else
               f"{row['as 1 in N']} ({row['value']:.2g})") if row["as 1 in N"] != "—"
        else "0 observed" if row["value"] == 0 else "undefined (no alerts)"
        for name, row in rates.iterrows()
    })
met = FalseAlertRates.from_deployment_counts(3_147_436, 2_077, 10)
side_by_side["Met, Sep 2024–Sep 2025 (published counts)"] = pd.Series(
    [f"{one_in_n(met.per_face_scanned)} ({met.per_face_scanned:.2g})", "unknown: listed passers-by not published",
     f"{one_in_n(met.false_discovery)} ({met.false_discovery:.2g})"],
    index=side_by_side[next(iter(side_by_side))].index,
)
pd.DataFrame(side_by_side)

# %% [markdown]
# ## 7. Export the chosen threshold and watchlist as a deployment configuration
#
# A demonstration watchlist is enrolled from some of the evaluation's volunteers (in a real
# deployment it is the force's watchlist, collated for the deployment). The configuration
# names the engine by model-file hashes, the watchlist by id and content hash, the retention
# policy, and the evaluation evidence at the threshold (FPIR and TPIR with intervals, and the
# hash of the saved results). It carries its own hash, so any later edit is detected; loading
# it back checks everything against the artefacts at hand.

# %%
export_dir = workspace_dir(WORKSPACE) / "notebooks" / "02_deployment"
export_dir.mkdir(parents=True, exist_ok=True)
watchlist_file = export_dir / "watchlist.sqlite"
for stale in export_dir.glob("watchlist.sqlite*"):
    stale.unlink()  # a fresh demonstration watchlist each run
watchlist = Watchlist(watchlist_file)
design = build_npl_protocol(manifest, params)
paths = np.asarray(manifest.absolute_paths(), dtype=object)
subject_ids = manifest.subject_ids.astype(str)
for row in design.enrolment[:20]:
    watchlist.enrol_files(
        engine,
        SubjectInfo(subject_ids[row], subject_ids[row].replace("_", " "),
                    category="test volunteer",
                    reason="LFR Workbench notebook 02: demonstration watchlist"),
        [paths[row]],
        largest_face=True,
    )
config = make_config(
    threshold=chosen, engine=engine, watchlist=watchlist, results=result,
    approved_by="(not approved: notebook demonstration)",
    notes=f"Threshold rule: highest threshold with TPIR >= {TARGET_TPIR:.0%} on dev people; "
          f"figures from an NPL-style evaluation on {manifest.name}.",
)
config_path = export_config(config, export_dir / "deployment_config.json")
print(f"wrote {config_path} (sha256 {config.sha256[:16]}…)")
print(config.to_json())

# %%
loaded = load_config(config_path)
verification = verify_config(loaded, engine=engine, watchlist=watchlist,
                             evidence=evidence_from_results(result, chosen))
print("checked:", ", ".join(f.field for f in verification.checked))
print("not checked:", ", ".join(verification.not_checked) or "nothing")

# %% [markdown]
# ## What to take away
#
# * A threshold is only meaningful with its **watchlist size** and **faces scanned**: the
#   same threshold gives ten times the false alerts on a watchlist ten times larger.
# * Quote which "false alert rate" a number is. "1 in 6,000" (FPIR at N = 10,000), "1 in
#   310,000" (per face scanned) and "0.5% of alerts" can all describe one system.
# * Intervals matter most where data are thin: an evaluation with a few thousand non-mated
#   searches cannot show a rate of 1 in 6,000 at N = 10,000 (notebook 01, the claim checker).
# * The exported configuration pins the threshold to the engine that gave it meaning and to
#   the evidence behind it: a different model or edited file is refused.
