"""Adversarial check of the one-sided cap counted by people (``capped_by_people``, stop 25).

The cap's justification (``Var(p_hat) <= p (1 - p) / K``, K Kish's effective number of
people) holds when the searches per person do not depend on the person's rate. These seeded
simulations of known truth try designs where that fails or is strained, and compare, on the
SAME data sets, the one-sided 95% coverage of the shipped bound
(``korn_graubard(errors, trials, sided="upper")``, capped) with the same bound with
``lfr_eval.metrics._clustered.ONE_SIDED_PEOPLE_CAP = False``. (Written against the first cap,
at Kish's number, which the doppelganger rows broke; the shipped cap, in ``n / M`` trials, is
valid for any rates: ``results/people_cap_adversarial.md``, last section.)

The truth is the search-weighted rate ``E[sum e_i] / E[sum n_i]`` (what FPIR over searches
means); where searches do not depend on the rate it is the mean person rate.

Designs (each a function drawing data sets):

* ``lambs``: a share ``f`` of people (per data set, Bernoulli) are lambs at ``factor`` times
  the others' rate and have ``k`` times their searches (regulars who pass the camera often);
  the lambs' own rates are Beta with intra-person correlation ``icc`` (0: all at the lamb rate).
* ``heavy``: searches 1 + Poisson(Gamma(2, (m - 1) / 2)), a share ``f`` of people with ``k``
  times that, independent of the person's Beta rate (ICC ``icc``).
* ``crowd``: most people one search, a share ``f`` with ``k`` searches (crowd tracking), Beta
  rates independent of searches.
* ``small``: as ``heavy`` with 10-30 people.

Usage: ``python benchmarks/bench_people_cap_adversarial.py [--n 1000] [--seed 1] [--only NAME]``
(prints a markdown table; ``--only`` a substring of the row names).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

import lfr_eval.metrics._clustered as clustered
from lfr_eval.metrics import korn_graubard

Batches = Iterator[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Cell:
    """One design cell: ``draw(n, rng)`` yields ``(trials (s,), errors (s, R))`` batches."""

    name: str
    people: int
    searches: str
    rate: float
    truth: float
    draw: Callable[[int, np.random.Generator], Batches]


def _base_trials(m: float, size: int, rng: np.random.Generator) -> np.ndarray:
    if m <= 1:
        return np.ones(size, np.int64)
    return 1 + rng.poisson(rng.gamma(2.0, (m - 1) / 2.0, size)).astype(np.int64)


def _beta(mean: np.ndarray | float, icc: float, size, rng: np.random.Generator) -> np.ndarray:
    mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), size)
    if icc == 0:
        return np.array(mean)
    scale = (1 - icc) / icc
    return rng.beta(mean * scale, (1 - mean) * scale)


def lambs(
    people: int,
    m: float,
    rate: float,
    k: float,
    *,
    f: float = 0.05,
    factor: float = 20.0,
    icc: float = 0.0,
    lamb_rate: float | None = None,
) -> Cell:
    """Lambs searched ``k`` times more; ``rate`` is the search-weighted truth.

    With ``lamb_rate`` the lambs' mean rate is fixed (doppelgangers) and the others' rate
    follows from ``rate``; otherwise the lambs are at ``factor`` times the others.
    """
    if lamb_rate is None:
        q = rate * (f * k + 1 - f) / (f * k * factor + 1 - f)
        lr = factor * q
    else:
        lr = lamb_rate
        q = (rate * (f * k + 1 - f) - f * k * lr) / (1 - f)
        if q < 0:
            raise ValueError("lamb_rate too high for this truth")
    if lr > 1:
        raise ValueError("lamb rate above 1")

    def draw(n: int, rng: np.random.Generator) -> Batches:
        for _ in range(n):
            lamb = rng.random(people) < f
            trials = _base_trials(m, people, rng)
            trials = np.where(lamb, np.rint(k * trials).astype(np.int64), trials)
            p = np.where(lamb, _beta(lr, icc, people, rng), q)
            yield trials, rng.binomial(trials, p)[:, None]

    tag = f"lambs {f:g} at {lr:.3g} (others {q:.2g}), {k:g}x searches, lamb ICC {icc:g}"
    return Cell(tag, people, f"{m:g} (lambs {k:g}x)", rate, rate, draw)


def heavy(people: int, m: float, rate: float, k: float, icc: float, *, f: float = 0.01) -> Cell:
    """Heavy-tailed searches independent of the person's rate (batched: trials per batch)."""

    def draw(n: int, rng: np.random.Generator) -> Batches:
        batches = 20
        for size in np.diff(np.linspace(0, n, batches + 1).astype(int)):
            trials = _base_trials(m, people, rng)
            heavy_ = rng.random(people) < f
            trials = np.where(heavy_, np.rint(k * trials).astype(np.int64), trials)
            p = _beta(rate, icc, (people, int(size)), rng)
            yield trials, rng.binomial(trials[:, None], p)

    tag = f"heavy: {f:g} of people {k:g}x searches, ICC {icc:g}"
    return Cell(tag, people, f"{m:g} ({f:g} at {k:g}x)", rate, rate, draw)


def crowd(
    people: int, rate: float, k: int, icc: float, *, f: float = 0.05, lamb_factor: float = 1.0
) -> Cell:
    """Most people one search, a share ``f`` with ``k`` (crowd tracking).

    ``lamb_factor`` > 1: the tracked people have that times the others' rate (per data set,
    so not batched); the truth is search-weighted.
    """
    if lamb_factor == 1.0:

        def draw(n: int, rng: np.random.Generator) -> Batches:
            batches = 20
            for size in np.diff(np.linspace(0, n, batches + 1).astype(int)):
                tracked = rng.random(people) < f
                trials = np.where(tracked, k, 1).astype(np.int64)
                p = _beta(rate, icc, (people, int(size)), rng)
                yield trials, rng.binomial(trials[:, None], p)

        tag = f"crowd: {f:g} of people tracked ({k} searches), others 1, ICC {icc:g}"
        return Cell(tag, people, f"1 ({f:g} at {k})", rate, rate, draw)

    q = rate * (f * k + 1 - f) / (f * k * lamb_factor + 1 - f)

    def draw_c(n: int, rng: np.random.Generator) -> Batches:
        for _ in range(n):
            tracked = rng.random(people) < f
            trials = np.where(tracked, k, 1).astype(np.int64)
            p = _beta(np.where(tracked, lamb_factor * q, q), icc, people, rng)
            yield trials, rng.binomial(trials, p)[:, None]

    tag = f"crowd: {f:g} tracked ({k} searches) at {lamb_factor:g}x rate, others 1, ICC {icc:g}"
    return Cell(tag, people, f"1 ({f:g} at {k})", rate, rate, draw_c)


def measure(cell: Cell, n: int, seed: int) -> dict[str, float]:
    """Coverage of the capped and uncapped one-sided bound on the same data sets."""
    rng = np.random.default_rng(seed)
    capped, uncapped, zero = [], [], []
    for trials, errors in cell.draw(n, rng):
        clustered.ONE_SIDED_PEOPLE_CAP = False
        try:
            off = korn_graubard(errors, trials, sided="upper")
        finally:
            clustered.ONE_SIDED_PEOPLE_CAP = True
        summary = clustered.summarise_clusters(errors, trials)
        on = clustered.capped_by_people(summary, off)  # what the shipped path does
        capped.append(on.ci_high)
        uncapped.append(off.ci_high)
        zero.append(errors.sum(axis=0) == 0)
    hi_on, hi_off = np.concatenate(capped), np.concatenate(uncapped)
    return {
        "capped": float(np.mean(cell.truth <= hi_on)),
        "uncapped": float(np.mean(cell.truth <= hi_off)),
        "binds": float(np.mean(hi_on < hi_off)),
        "no_errors": float(np.mean(np.concatenate(zero))),
        "n": float(hi_on.size),
    }


def _lambs_cells() -> list[Cell]:
    out: list[Cell] = []
    for people in (50, 400, 2000):
        for m in (2, 10):
            for rate in (1e-3, 1e-2, 0.05):
                for k in (3, 10):
                    out.append(lambs(people, m, rate, k))
    for people in (50, 400, 2000):
        for rate in (1e-3, 1e-2, 0.05):
            out.append(lambs(people, 5, rate, 10, icc=0.5))
            # doppelgangers: 1% of people carry 90% of the errors, matched often (ICC 0.5)
            lr = min(0.5, 0.9 * rate * 1.09 / 0.1)
            out.append(lambs(people, 5, rate, 10, f=0.01, lamb_rate=lr, icc=0.5))
            # milder: 2% of people carry half the errors, 3x searches, ICC 0.3 among them
            lr = min(0.5, 0.5 * rate * 1.04 / 0.06)
            out.append(lambs(people, 5, rate, 3, f=0.02, lamb_rate=lr, icc=0.3))
    return out


def cells() -> list[Cell]:
    # 1. lambs who are also searched more
    out = _lambs_cells()
    # 2. heavy-tailed searches independent of rate
    for people in (50, 400, 2000):
        for rate in (1e-3, 1e-2, 0.05):
            for icc in (0.0, 0.1, 0.5):
                out.append(heavy(people, 5, rate, 100, icc))
    # 3. crowd tracking
    for people in (400, 2000):
        for rate in (1e-3, 1e-2):
            for icc in (0.0, 0.3):
                out.append(crowd(people, rate, 50, icc))
                out.append(crowd(people, rate, 50, icc, lamb_factor=10.0))
    # 4. small numbers of people
    for people in (10, 20, 30):
        for rate in (0.01, 0.05, 0.2):
            for icc in (0.0, 0.1, 0.5):
                out.append(heavy(people, 8, rate, 1, icc, f=0.0))
            out.append(lambs(people, 8, min(rate, 0.09), 5, f=0.1, factor=8.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="")
    parser.add_argument("--people", type=int, default=0)
    args = parser.parse_args()
    start = time.process_time()
    print("| design | people | searches | rate | capped | uncapped | cap binds | no errors |")
    print("|---|---|---|---|---|---|---|---|")
    for cell in cells():
        if args.only not in cell.name or (args.people and cell.people != args.people):
            continue
        r = measure(cell, args.n, args.seed)
        print(
            f"| {cell.name} | {cell.people} | {cell.searches} | {cell.rate:g} | "
            f"{r['capped']:.3f} | {r['uncapped']:.3f} | {r['binds']:.3f} | "
            f"{r['no_errors']:.3f} |",
            flush=True,
        )
    print(f"\nCPU {time.process_time() - start:.0f} s, n {args.n}, seed {args.seed}")


if __name__ == "__main__":
    main()
