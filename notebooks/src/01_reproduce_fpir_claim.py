# %% [markdown]
# # 01 · Reproducing a published false-alert claim with NPL's design
#
# The Met and South Wales Police say their live facial recognition raises false alerts "at
# worst 1 in 6,000 ... on a watchlist containing 10,000 images" (NPL, Mansfield 2023; see
# `../shared/domain.md`, section 4). This notebook runs the same *kind* of study on real faces
# with the workbench's default engine and asks what such data can and cannot say about that
# claim:
#
# 1. **Design** — NPL's filler-gallery design on LFW: a reference gallery of *fillers* (one
#    image each of people never searched for), *volunteers* who are enrolled and then searched
#    for with their other images (**mated searches**), and *strangers* who were never enrolled
#    (**non-mated searches**).
# 2. **Per-probe false matches** — each non-mated search's own false-match rate against the
#    fillers, and what it implies for watchlists of 1,000 and 10,000.
# 3. **FPIR and TPIR** at thresholds spanning the operational range, with intervals.
# 4. **The claim checker** on "1 in 6,000 at N = 10,000": what these data support, and how
#    many more non-mated searches a firm answer would need.
#
# Every number below is computed when the notebook runs; the committed file has no outputs.
# It uses only the public `lfr_eval` API.
#
# ## What differs from the NPL study — read this before any number
#
# | | NPL study (2023) | this notebook |
# |---|---|---|
# | images | live video of people walking past cameras in crowds at 5 sites | LFW: press photographs of public figures, cropped and aligned, mostly frontal and well lit |
# | algorithm | NEC NeoFace V4 | the workbench engine (default: dlib ResNet-128); its similarity scale is **not** NeoFace's — 0.60 here means something else |
# | subjects | ~400 volunteers, a demographically balanced filler set of 178,000 images | LFW's 5,749 public figures, mostly white men; ethnicity labels for only 866 people |
# | mated searches | ~4,000 passes (~10 per volunteer) | up to 10 images per volunteer, far fewer volunteers on a CI subset |
# | non-mated searches | crowds of over 130,000 people | a few thousand images of strangers (all of LFW), a few hundred on a CI subset |
# | watchlist | scaled to the deployed size and composition | scaled from the filler gallery with the same independence model |
#
# So this notebook reproduces the **method**, not the **number**: it shows how a claim like
# "1 in 6,000" is tested, and how far a data set of a given size can go.

# %% tags=["parameters"]
# Parameters. Environment variables, where set, override them (CI runs a subset this way):
# LFR_LFW_DIR, LFR_NB_DATA, LFR_NB_ENGINE, LFR_NB_SUBSET, LFR_NB_WORKERS, LFR_WORKSPACE.
import os

LFW_DIR = os.environ.get("LFR_LFW_DIR", "../../shared/datasets/lfw")  # LFW, either layout
DATA = os.environ.get("LFR_NB_DATA") or None  # or a manifest CSV/Parquet or a folder per person
ENGINE = os.environ.get("LFR_NB_ENGINE", "dlib")  # "dlib", "insightface" or "dlib-torch"
SUBSET = int(os.environ.get("LFR_NB_SUBSET", "0")) or None  # max images (whole people); None: all
WORKERS = int(os.environ.get("LFR_NB_WORKERS", "2"))  # processes embedding images
WORKSPACE = os.environ.get("LFR_WORKSPACE") or None  # holds the embedding cache; None: default
SEED = 0

VOLUNTEER_FRACTION = 0.25  # share of people with 2+ images who enrol (NPL: ~400 volunteers)
FILLER_FRACTION = 0.5  # share of the others who become fillers; the rest are strangers
MAX_SEARCHES_PER_PERSON = 10  # NPL's volunteers walked past about 10 times each
CLAIM_ONE_IN = 6_000  # "1 in 6,000 ..."
CLAIM_WATCHLIST = 10_000  # "... on a watchlist of 10,000"
NPL_TPIR = 0.89  # TPIR NPL reported at the police setting (Home Office, PQ 98989)

# %% [markdown]
# ## 1. Data
#
# LFW (or your own manifest, see `datasets/README.md`). With `SUBSET` set, whole people (at
# most `MAX_SEARCHES_PER_PERSON` + 1 images each) are drawn at random until about that many
# images are reached — a person is never split between roles.

# %%
import functools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from IPython.display import display

from lfr_eval.claims import Claim, check_fpir_claim, claim_scaled_fpir, searches_needed
from lfr_eval.datasets import EmbeddingCache, embed_manifest, load_dataset_subset
from lfr_eval.faces import load_engine
from lfr_eval.metrics import (
    IdentificationFrame,
    fnir_estimate,
    fpir_estimate,
    threshold_at_tpir,
)
from lfr_eval.operational import fpir_at_watchlist_size, one_in_n, scale_fpir
from lfr_eval.protocols import NplParams, build_npl_protocol, run_npl_protocol
from lfr_eval.protocols import scale_fpir as scale_filler_fpir

pio.renderers.default = "plotly_mimetype+notebook"
pd.set_option("display.width", 120)
pd.set_option("display.float_format", "{:.4g}".format)

# With SUBSET, spread the budget over more people: at most MAX_SEARCHES_PER_PERSON + 1 images each.
manifest = load_dataset_subset(
    DATA, LFW_DIR, subset=SUBSET, seed=SEED, max_images_per_subject=MAX_SEARCHES_PER_PERSON + 1
)
print(f"{manifest.name}: {manifest.n_images:,} images of {manifest.n_subjects:,} people")
manifest.summary()

# %% [markdown]
# ## 2. The NPL design: volunteers, fillers, strangers
#
# Roles are assigned by **person**, never by image, so a stranger can never meet their own
# face in the gallery. The watchlist searched is volunteers + fillers.

# %%
params = NplParams(
    seed=SEED,
    volunteer_fraction=VOLUNTEER_FRACTION,
    filler_fraction=FILLER_FRACTION,
    max_mated_per_subject=MAX_SEARCHES_PER_PERSON,
    max_non_mated_per_subject=MAX_SEARCHES_PER_PERSON,
)
design = build_npl_protocol(manifest, params)
subjects = manifest.subject_ids.astype(str)
roles = {
    "volunteers' enrolment images": design.enrolment,
    "mated searches (volunteers' other images)": design.mated,
    "fillers (one image per person)": design.fillers,
    "non-mated searches (strangers)": design.non_mated,
}
pd.DataFrame(
    {
        "images": {role: len(rows) for role, rows in roles.items()},
        "people": {role: len(np.unique(subjects[rows])) for role, rows in roles.items()},
    }
)

# %% [markdown]
# ## 3. Embed the faces (once) and score the searches
#
# Embeddings go through the workspace's cache, keyed by image content and engine (model file
# hashes and detector settings): the other notebooks, and a second run, reuse them. Images in
# which no face is found are **failures to acquire**; they are counted, not silently dropped,
# and they count as NIST FRTE counts them: a volunteer's image with no face is a missed mated
# search (it raises FNIR at every threshold), a stranger's is a non-mated search that returned
# no candidate (in FPIR's denominator, never a false positive). `run_npl_protocol(...,
# failures="exclude")` leaves them out instead.

# %%
engine = load_engine(ENGINE)
cache = EmbeddingCache.in_workspace(WORKSPACE)
embeddings = embed_manifest(
    manifest, engine, cache, face_choice="central", workers=WORKERS,
    engine_factory=functools.partial(load_engine, ENGINE),
)
# counts of fillers at or above every threshold of a fine grid (no searches × fillers matrix)
GRID = np.round(np.linspace(-1.0, 1.0, 2001), 4)
run = run_npl_protocol(design, embeddings, thresholds=GRID)
searches = run.searches
fillers = run.filler_counts
print(f"engine: {engine.engine_id.backend}; models: "
      + ", ".join(f"{m.name} ({m.sha256[:12]})" for m in engine.engine_id.models))
print(f"runtime: {engine.runtime.name}; scoring: {run.scoring_runtime.name}")
print(f"embedded now: {embeddings.n_computed:,}; from the cache: "
      f"{len(set(embeddings.image_sha256)) - embeddings.n_computed:,}; "
      f"failed to acquire: {embeddings.n_failed:,}")
print(f"watchlist searched: N = {searches.watchlist_size:,} "
      f"({searches.watchlist_size - fillers.n_fillers:,} volunteers + {fillers.n_fillers:,} fillers)")
print(f"mated searches: {searches.n_mated:,} ({searches.n_failed_mated:,} failed to acquire); "
      f"non-mated searches: {searches.n_non_mated:,} ({searches.n_failed_non_mated:,} failed) "
      f"from {len(np.unique(searches.non_mated_subjects)):,} people; failed to enrol: "
      f"{run.failed_to_enrol}")
run.acquisition.query("attribute == 'all'")

# %% [markdown]
# ## 4. Thresholds spanning the operational range
#
# Thresholds are set on this engine's own scale. We take the thresholds at which a single
# non-mated comparison matches falsely with probability 1e-2, 1e-3, 1e-4 (and 1e-5 where the
# data have enough comparisons to say so), plus the thresholds at which this engine's TPIR
# is 89% — what NPL reported for the police setting, so the closest analogue of "0.60 on
# NeoFace" — and, stricter, 80% and 70%. These are chosen on the same data they are reported on: they describe, they do not
# validate (notebook 02 shows a held-out choice).

# %%
# pooled FMR on the grid: failed searches compare nothing
pooled = fillers.pooled_fmr()
n_comparisons = int(fillers.scored.sum()) * fillers.n_fillers
fmr_targets = [t for t in (1e-2, 1e-3, 1e-4, 1e-5) if t * n_comparisons >= 10]
# the lowest grid threshold whose pooled FMR is at most the target
fmr_thresholds = {f"FMR {t:.0e}": float(GRID[np.argmax(pooled <= t)]) for t in fmr_targets}


def on_grid(threshold: float) -> float:
    # the grid threshold at or just below it (TPIR at least the target)
    return float(GRID[max(0, np.searchsorted(GRID, threshold, side="right") - 1)])


tpir_thresholds = {
    f"TPIR {p:.0%}" + (" (NPL analogue)" if p == NPL_TPIR else ""):
        on_grid(threshold_at_tpir(searches, p))
    for p in (NPL_TPIR, 0.80, 0.70)
}
named = {**fmr_thresholds, **tpir_thresholds}
thresholds = np.array(sorted({round(t, 4) for t in named.values()}))
pd.Series({name: round(t, 4) for name, t in named.items()}, name="threshold (cosine)")

# %%
fig = go.Figure()
# failures to acquire have no score (-inf) and are left out of the histograms
fig.add_histogram(x=searches.mate_scores[~searches.mated_failed], name="mated: mate's score",
                  histnorm="probability", nbinsx=80, opacity=0.6)
fig.add_histogram(x=searches.non_mated_best[~searches.non_mated_failed],
                  name="non-mated: best score in watchlist", histnorm="probability", nbinsx=80,
                  opacity=0.6)
for name, t in named.items():
    fig.add_vline(x=t, line_dash="dot", annotation_text=name, annotation_textangle=-90)
fig.update_layout(barmode="overlay", title=f"Similarity scores (N = {searches.watchlist_size:,})",
                  xaxis_title="cosine similarity", yaxis_title="share of searches")
display(fig)

# %% [markdown]
# ## 5. Per-probe false-match behaviour, scaled to watchlists of 1,000 and 10,000
#
# Each non-mated search *p* is compared with every filler, which gives its own false-match
# rate FMR_p(T). For a watchlist of N people, FPIR(N, T) = mean over searches of
# 1 − (1 − FMR_p(T))^N, which is about N·FMR for small rates. Keeping the rate **per probe**
# matters: a few faces draw most false matches, and a single pooled FMR would overstate how
# fast FPIR grows with N. Intervals are clustered by **people** (a stranger with several
# images is one cluster; the `interval` column names the method).

# %%
counts, sizes, _ = fillers.false_match_counts(thresholds)
per_probe_fmr = counts[:, 0, :] / sizes[0]  # (searches, thresholds)
rows = []
for j, t in enumerate(thresholds):
    fmr_p = per_probe_fmr[:, j]
    matched = fmr_p > 0
    top = np.sort(fmr_p)[::-1][: max(1, len(fmr_p) // 100)].sum()
    rows.append({
        "threshold": t,
        "pooled FMR": fmr_p.mean(),
        "searches with any false match": matched.mean(),
        "share of false matches from the worst 1% of searches": top / fmr_p.sum()
        if fmr_p.sum() else np.nan,
        "FPIR(1,000) per-probe": float(fpir_at_watchlist_size(fmr_p, 1_000)),
        "FPIR(1,000) pooled N·FMR model": float(fpir_at_watchlist_size(fmr_p.mean(), 1_000)),
        "FPIR(10,000) per-probe": float(fpir_at_watchlist_size(fmr_p, 10_000)),
        "FPIR(10,000) pooled N·FMR model": float(fpir_at_watchlist_size(fmr_p.mean(), 10_000)),
    })
per_probe = pd.DataFrame(rows).set_index("threshold")
display(per_probe)

# %%
scaling = scale_filler_fpir(fillers, [1_000, CLAIM_WATCHLIST], thresholds, n_boot=500,
                            seed=SEED)
table = scaling.table.assign(
    **{"1 in": lambda d: d["fpir"].map(one_in_n),
       "upper 1 in": lambda d: d["upper"].map(one_in_n)}
)
print(f"interval: {scaling.interval}; fillers measured: {fillers.n_fillers:,}")
table[["watchlist_size", "threshold", "fpir", "lower", "upper", "interval", "1 in",
       "upper 1 in", "n_searches"]]

# %% [markdown]
# The per-probe FMR can only resolve steps of 1 / (number of fillers): with few fillers a
# single false match is already a large rate, and scaling to N = 10,000 multiplies that
# coarseness. NPL measured against 178,000 fillers for this reason. Where no search matched
# any filler, FPIR is 0 and no spread between people can be seen, so an interval from the
# data would collapse to 0 – 0 — which is not certainty. Those rows (`interval` column: "exact
# one-sided, counted by people (no false matches)") carry an exact bound counted by *people*
# (one person's repeat searches are not independent): with no false match from *s* people
# against *F* fillers, FPIR(F) ≤ 1 − 0.05^(1/s), about 3 / *s* (the rule of three, section 7),
# and under the same independence model FPIR(N) ≤ 1 − 0.05^(N/(sF)), about 3N / (sF): fewer
# fillers or people, or a larger watchlist, widen it. The other rows' intervals are clustered
# by person too (Korn–Graubard-style beta interval of the mean per-search alert probability,
# coverage checked by simulation in `benchmarks/bench_scaling_grid.py`); beyond the fillers
# measured they span the per-person to the pooled model, and a generalised Pareto tail model
# (`lfr_eval.protocols.tail_model_fpir`, model-based, with fit diagnostics) can be asked for.

# %% [markdown]
# ## 6. FPIR and TPIR at these thresholds, with intervals
#
# Measured directly at the watchlist searched (volunteers + fillers). Clopper–Pearson intervals
# treat searches as independent. The clustered intervals (design-effect Jeffreys, the workbench
# default) allow for repeated images of one person: the spread of errors *between people* says
# how many independent searches the data are worth, and a binomial interval aimed at 95% is
# computed for that number. Only the between-person part of the spread is guessed from the people
# seen, so only that part is widened for having few people (unless one to four people carry every
# error: then all of it is, except the lower end where the data hold at most five *effective*
# errors, errors ÷ design effect, whose count already puts it far below the rate). However much
# it is widened, the effective number of searches is never below the effective number of
# people, and at exactly one error the interval is the exact Clopper–Pearson one; with no
# errors the bound is counted by people. (The claim check
# uses the exact variant, `korn-graubard`, whose bound is never below 95%, raised to its
# **envelope over fewer errors**: where one or two people carry the errors the plain bound is so
# wide that a third person with an error would *lower* it, so the bound is the largest over the
# same data with fewer errors among the people with the most — one more false positive rarely
# lowers it, and then slightly — and never above the bound counted by people, as if each person
# answered all their searches alike, which independent people cannot exceed.)

# %%
# search-level Clopper-Pearson only by name, beside the default clustered by person
fpir_curve = fpir_estimate(searches, thresholds, method="clopper-pearson")
tpir_curve = fnir_estimate(searches, thresholds, method="clopper-pearson")
frame = IdentificationFrame(searches, thresholds, ci_method="design-effect-jeffreys", seed=SEED)
boot = frame.overall.reset_index()
rows = []
for j, t in enumerate(thresholds):
    fp, fn = fpir_curve[j], tpir_curve[j]
    tp = fn.complement()
    fb = boot[(boot["metric"] == "fpir") & np.isclose(boot["threshold"], t)].iloc[0]
    nb = boot[(boot["metric"] == "fnir") & np.isclose(boot["threshold"], t)].iloc[0]
    rows.append({
        "threshold": t,
        "false positives": fp.errors,
        "non-mated": fp.trials,
        "FPIR": fp.rate,
        "FPIR 95% CI (CP)": f"{fp.ci_low:.2g}–{fp.ci_high:.2g}",
        "FPIR 95% CI (people)": f"{fb['ci_low']:.2g}–{fb['ci_high']:.2g}",
        "TPIR": tp.rate,
        "TPIR 95% CI (CP)": f"{tp.ci_low:.2f}–{tp.ci_high:.2f}",
        "TPIR 95% CI (people)": f"{1 - nb['ci_high']:.2f}–{1 - nb['ci_low']:.2f}",
        "mated": fn.trials,
    })
print(f"watchlist N = {searches.watchlist_size:,}")
pd.DataFrame(rows).set_index("threshold")

# %% [markdown]
# ## 7. The claim checker: "1 in 6,000 at N = 10,000"
#
# A claim "FPIR ≤ b" is **supported** at 95% when a one-sided 95% upper bound of FPIR at the
# claimed watchlist size is at or below b. The bound is **clustered by person** (a stranger's
# repeat searches are not independent). Our searches ran against a smaller watchlist, so the
# figure at N = 10,000 is the filler-gallery scaling of section 5 (the same function,
# `lfr_eval.protocols.scaled_fpir`, as `lfr-eval claim --scale-watchlist`, the report and the
# app; beyond the fillers measured its bound is the high end of the extrapolation range). The
# claim is **refuted** when even the low end of the two-sided 95% interval at N = 10,000 lies
# above b; otherwise the data are **undecided**. The checker also says how much more data a
# firm answer would take — counted in **people**, since more searches of the same people add
# little when their searches hang together.

# %%
verdicts = []
checks = {}
for name, t in named.items():
    claim = Claim.one_in(CLAIM_ONE_IN, watchlist_size=CLAIM_WATCHLIST, threshold=round(t, 4),
                         source="NPL MS 43 via the Met")
    # the scaled figure at the claimed N: the same one the CLI's claim checker uses
    figure = claim_scaled_fpir(scaling.table, claim)
    check = check_fpir_claim(claim, searches, scale_watchlist=True, scaled_fpir=figure)
    checks[name] = check
    low_at_claim = figure.lower if figure is not None else float("nan")
    verdict = ("supported" if check.supported
               else "refuted" if low_at_claim > claim.bound else "undecided")
    verdicts.append({
        "threshold": name,
        "T": round(t, 4),
        "false positives": check.false_positives,
        "non-mated searches": check.non_mated_searches,
        "people": check.n_subjects,
        "95% upper bound at N=10,000": one_in_n(check.upper_bound),
        "95% interval's low end at N=10,000": one_in_n(low_at_claim),
        "verdict": verdict,
        "people needed (no more false positives)": check.people_needed_if_no_more_errors,
        "more people needed": check.additional_people_needed,
        "people needed at observed rate": check.people_needed_at_observed_rate
        or "never: observed rate above the claim",
        # how the bound was made, in the words of the CLI, the report and the explorer
        "upper bound's method": check.bound_method(explain=False),
    })
pd.DataFrame(verdicts).set_index("threshold")

# %%
headline = checks[f"TPIR {NPL_TPIR:.0%} (NPL analogue)"]
print(headline.summary())

# %% [markdown]
# ### How many non-mated searches would a firm answer take?
#
# With zero false positives, supporting "1 in 6,000" at 95% needs about 18,000 *independent*
# non-mated searches *at N = 10,000*; NPL's 7 false positives need about 79,000 (domain brief,
# section 5). With repeat searches of one person they are not independent: with no false
# positive at all the bound is counted by people, so it takes about 18,000 *people* (the
# verdict table above counts people). Measured against a smaller watchlist, the claim
# translates into a smaller FPIR bound, so more are needed — which is why NPL scaled from a
# large filler set.

# %%
need = pd.DataFrame(
    {
        "false positives seen": k,
        "searches needed at N = 10,000": searches_needed(k, 1 / CLAIM_ONE_IN),
        f"searches needed at N = {searches.watchlist_size:,} (bound scaled)": searches_needed(
            k, float(scale_fpir(1 / CLAIM_ONE_IN, CLAIM_WATCHLIST, searches.watchlist_size))
        ),
    }
    for k in (0, 1, 3, 7)
).set_index("false positives seen")
display(need)

# %% [markdown]
# ## 8. What this shows, and what it does not
#
# * The **method** reproduces: a filler gallery, mated and non-mated searches split by person,
#   per-probe false-match rates scaled to the deployed watchlist size, and a claim tested with
#   a one-sided bound clustered by person.
# * The **number** does not transfer: a different algorithm with a different score scale, on
#   still press photographs rather than video of crowds, with far fewer and less diverse
#   subjects. A threshold here is comparable to NPL's only through what it does (its TPIR,
#   its FPIR), never through its value.
# * The verdict table says whether *this* data set can decide the claim at each threshold.
#   Where it is "undecided", the "more people needed" column is the honest answer: LFW has
#   too few strangers to confirm a rate of 1 in 6,000 at N = 10,000, and a CI subset has far
#   fewer. Intervals that resample people are the ones to quote when people repeat.
# * Scaling to N assumes a watchlist drawn like the fillers. NPL also scaled to the
#   watchlist's demographic *composition*; `lfr_eval.protocols.scale_fpir(...,
#   attribute=..., composition=...)` does that where fillers carry labels.
