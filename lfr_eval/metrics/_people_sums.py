"""One group's sums over its people: what the null bootstrap group test needs, nothing per person.

:func:`~lfr_eval.metrics.bootstrap_compare_groups` studentizes each pair by the groups'
design effects (sums of ``e``, ``n``, ``e^2``, ``e n``, ``n^2`` over people), estimates each
group's intra-person correlation by moments (``sum e^2 / n`` besides those) and draws its null
replicates with every group's real searches per person (a histogram: how many people had 1, 2,
... searches). :class:`PeopleSums` holds exactly that at every threshold of a grid, so an
aggregate result can keep it and run the same test, with the same p-values, as the full
per-person results it was made from.

Every sum is made of whole-number sums per searches value (exact in int64) added in ascending
order of that value, so the figures do not depend on the order the people come in: the
frame's column at a threshold and the per-person counts at that threshold give the same bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lfr_eval.errors import ResultError
from lfr_eval.metrics._validation import MetricInputError

MSG_NOT_WHOLE = "per-person errors and searches must be whole numbers"


@dataclass(frozen=True)
class PeopleSums:
    """One group's sums over its people (those with at least one search) at m thresholds.

    Attributes
    ----------
    errors : ndarray of float, shape (m,)
        ``sum e_i``: the group's errors at each threshold.
    squares : ndarray of float, shape (m,)
        ``sum e_i^2``.
    cross : ndarray of float, shape (m,)
        ``sum e_i n_i``.
    squares_per_search : ndarray of float, shape (m,)
        ``sum e_i^2 / n_i`` (each person's squared errors over its searches).
    searches : ndarray of int64, shape (k,)
        The distinct searches-per-person values, ascending, all >= 1.
    people : ndarray of int64, shape (k,)
        People with each of those values (>= 1).
    """

    errors: np.ndarray
    squares: np.ndarray
    cross: np.ndarray
    squares_per_search: np.ndarray
    searches: np.ndarray
    people: np.ndarray

    @property
    def n_people(self) -> int:
        return int(self.people.sum())

    @property
    def trials(self) -> float:
        """``sum n_i``: searches in all."""
        return float(np.sum(self.searches * self.people))

    @property
    def trials_squared(self) -> float:
        """``sum n_i^2``."""
        return float(np.sum(self.searches.astype(np.float64) ** 2 * self.people))

    def column(self, t: int) -> PeopleSums:
        """The one-threshold sums at column ``t``."""
        cut = slice(t, t + 1)
        return PeopleSums(
            self.errors[cut], self.squares[cut], self.cross[cut],
            self.squares_per_search[cut], self.searches, self.people,
        )  # fmt: skip

    def moments(self) -> np.ndarray:
        """(5,) sums of ``e, n, e^2, e n, n^2`` at the (single) threshold: the studentized
        pair statistic's input (:func:`lfr_eval.metrics._group_tests._studentized_pairs`)."""
        return np.array(
            [
                float(self.errors[0]),
                self.trials,
                float(self.squares[0]),
                float(self.cross[0]),
                self.trials_squared,
            ]
        )

    def searches_per_person(self) -> np.ndarray:
        """Every person's searches, ascending (the histogram expanded), int64 (s,)."""
        return np.repeat(self.searches, self.people)


def _whole(values: np.ndarray) -> np.ndarray:
    out = np.asarray(values)
    if out.dtype.kind == "f":
        if not np.all(np.isfinite(out)) or np.any(out != np.round(out)):
            raise MetricInputError(MSG_NOT_WHOLE)
    elif out.dtype.kind not in "iub":
        raise MetricInputError(MSG_NOT_WHOLE)
    return out.astype(np.int64, copy=False)


class PeopleSumsBuilder:
    """Adds up a :class:`PeopleSums` block by block, so a pass over the per-person counts made
    for something else (:func:`~lfr_eval.metrics._intervals.summarise_subjects`' blocks) makes
    the sums too, without expanding the counts a second time.

    Parameters
    ----------
    searches : array_like of int, shape (s,)
        Every person's searches (all blocks together): the histogram's values.
    """

    def __init__(self, searches: ArrayLike) -> None:
        n_all = _whole(np.asarray(searches).ravel())
        self._values, self._people = np.unique(n_all[n_all > 0], return_counts=True)
        self._by_value_e: np.ndarray | None = None  # (k, m) int64: sum of e over n = value
        self._by_value_ee: np.ndarray | None = None  # (k, m) int64: sum of e^2 over them

    def add(self, errors: ArrayLike, trials: ArrayLike) -> None:
        """One block: per-person ``errors`` (r, m) (or (r,)) and searches ``trials`` (r,),
        whole numbers; people without a search are skipped. The block is only read."""
        from scipy.sparse import csr_array  # imported here: ~1 s, and not every caller needs it

        values = self._values
        e = _whole(np.asarray(errors))
        if e.ndim == 1:
            e = e[:, None]
        n = _whole(np.asarray(trials).ravel())
        if self._by_value_e is None:
            self._by_value_e = np.zeros((values.shape[0], e.shape[1]), np.int64)
            self._by_value_ee = np.zeros_like(self._by_value_e)
        assert self._by_value_ee is not None
        use = n > 0
        if not use.all():
            e, n = e[use], n[use]
        if not n.shape[0]:
            return
        slot = np.searchsorted(values, n)
        found = values[np.minimum(slot, len(values) - 1)]
        if np.any(slot >= values.shape[0]) or np.any(found != n):
            raise MetricInputError("a block holds searches the searches histogram does not")
        # each searches value's sums as a sparse one-hot product (exact in int64; 4x the
        # sort-and-reduceat it replaced, which copied the block)
        one_hot = csr_array(
            (np.ones(n.shape[0], np.int64), (slot, np.arange(n.shape[0]))),
            shape=(values.shape[0], n.shape[0]),
        )
        self._by_value_e += one_hot @ e
        self._by_value_ee += one_hot @ (e * e)

    def result(self) -> PeopleSums:
        """The sums of every block added (at least one)."""
        by_value_e, by_value_ee, values = self._by_value_e, self._by_value_ee, self._values
        if by_value_e is None or by_value_ee is None:
            raise MetricInputError("no blocks of per-person counts were given")
        # ascending searches values, one value at a time: the same bits whatever the people's
        # order or the number of thresholds
        per_search = np.zeros(by_value_e.shape[1])
        for k in range(values.shape[0]):
            per_search += by_value_ee[k] / float(values[k])
        return PeopleSums(
            errors=by_value_e.sum(axis=0).astype(np.float64),
            squares=by_value_ee.sum(axis=0).astype(np.float64),
            cross=(values[:, None] * by_value_e).sum(axis=0).astype(np.float64),
            squares_per_search=per_search,
            searches=values.astype(np.int64),
            people=self._people.astype(np.int64),
        )


def people_sums_of_chunks(
    chunks: Iterable[tuple[ArrayLike, ArrayLike]], searches: ArrayLike
) -> PeopleSums:
    """:class:`PeopleSums` of people given block by block.

    Parameters
    ----------
    chunks : iterable of (errors (r, m), trials (r,))
        Each block's per-person errors at m thresholds and searches (whole numbers), e.g.
        :meth:`lfr_eval.metrics._intervals.SubjectCounts.dense_chunks`; people without a
        search are skipped.
    searches : array_like of int, shape (s,)
        Every person's searches (all blocks together): the histogram's values.
    """
    builder = PeopleSumsBuilder(searches)
    for errors, trials in chunks:
        builder.add(errors, trials)
    return builder.result()


def people_sums(errors: ArrayLike, trials: ArrayLike) -> PeopleSums:
    """:class:`PeopleSums` of per-person ``errors`` ((s,) or (s, m)) and ``trials`` (s,)."""
    n = np.asarray(trials).ravel()
    return people_sums_of_chunks([(errors, n)], n)


def format_searches_histogram(sums: PeopleSums) -> str:
    """The searches-per-person histogram as text: ``"1x1200 2x80 10x3"`` (searches x people),
    what an aggregate's rates row keeps."""
    return " ".join(f"{v}x{c}" for v, c in zip(sums.searches, sums.people, strict=True))


def parse_searches_histogram(text: object) -> tuple[np.ndarray, np.ndarray] | None:
    """(searches, people) from :func:`format_searches_histogram`'s text; None where the text
    is missing (an aggregate written before it was recorded, or a group without searches).

    Raises
    ------
    ValueError
        The text is there but is not such a histogram (edited or damaged): values and
        counts must be whole numbers ≥ 1, the values strictly ascending.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        pairs = [item.split("x") for item in text.split()]
        # Python ints first: a number beyond int64 is refused, not wrapped or overflowed
        values = [int(v) for v, _ in pairs]
        people = [int(c) for _, c in pairs]
    except ValueError:
        raise ValueError(f"not a searches-per-person histogram: {text[:60]!r}") from None
    if not values or min(values) < 1 or min(people) < 1:
        raise ValueError(f"searches and people must be at least 1: {text[:60]!r}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"searches values must be strictly ascending: {text[:60]!r}")
    if max(values) >= 2**62 or sum(v * c for v, c in zip(values, people, strict=True)) >= 2**62:
        raise ValueError(f"searches beyond any data set: {text[:60]!r}")
    return np.array(values, np.int64), np.array(people, np.int64)


#: Rates-table columns that hold a :class:`PeopleSums` (a frame's and an aggregate's rows).
PEOPLE_SUMS_COLUMNS = (
    "errors_squared",
    "errors_searches",
    "errors_squared_per_search",
    "searches_histogram",
)


def people_sums_columns(sums: PeopleSums) -> dict[str, np.ndarray]:
    """The rates-table columns (:data:`PEOPLE_SUMS_COLUMNS`) of ``sums`` at its m thresholds."""
    m = sums.errors.shape[0]
    return {
        "errors_squared": sums.squares.astype(np.int64),
        "errors_searches": sums.cross.astype(np.int64),
        "errors_squared_per_search": sums.squares_per_search.astype(np.float64),
        "searches_histogram": np.full(m, format_searches_histogram(sums), dtype=object),
    }


MSG_SUMS_DO_NOT_FIT = (
    "the rates row of {where} holds sums over people that no set of people can have ({why}): "
    "the aggregate was edited or damaged; make it again from the full results"
)


def _sums_fit(
    errors: float, squares: float, cross: float, per_search: float,
    values: np.ndarray, people: np.ndarray,
) -> str | None:  # fmt: skip
    """Why these sums cannot come from people with ``0 <= e_i <= n_i``, or None if they can.

    The bounds every real set obeys: 0 <= sum e <= sum e^2 <= sum e n (e_i^2 <= e_i n_i),
    min(n) sum e <= sum e n <= max(n) sum e, (sum e)^2 / sum n <= sum e^2/n <= sum e
    (Cauchy-Schwarz; e_i / n_i <= 1) and sum e <= sum n.
    """
    if not all(np.isfinite([errors, squares, cross, per_search])):
        return "a sum is not a finite number"
    if any(x != round(x) for x in (errors, squares, cross)):
        return "sums of whole counts that are not whole"
    total = float(np.dot(values.astype(np.float64), people))
    tol = 1e-9 * max(1.0, squares)
    if not 0 <= errors <= squares <= cross:
        return "not 0 <= errors <= errors_squared <= errors_searches"
    if errors > total:
        return "more errors than searches"
    if not float(values[0]) * errors <= cross <= float(values[-1]) * errors:
        return "errors_searches outside [fewest, most] searches x errors"
    if not errors * errors / total - tol <= per_search <= errors + tol:
        return "errors_squared_per_search outside [errors^2 / searches, errors]"
    return None


def people_sums_of_row(row: Mapping[str, Any]) -> PeopleSums | None:
    """The one-threshold :class:`PeopleSums` of a rates row, or None where it holds no
    searches-per-person histogram (an aggregate written before the sums were recorded, or a
    group without searches: the group test then falls back to what the row's clustered
    totals allow, and says so).

    Raises
    ------
    ResultError
        The histogram is there but the row's sums do not fit together or with its people
        and searches (the aggregate was edited or damaged): no test is run on them.
    """
    text = row.get("searches_histogram")
    where = (
        f"{row.get('metric', '?')} / {row.get('attribute', '?')} = {row.get('group', '?')} "
        f"at threshold {row.get('threshold', '?')}"
    )

    def refuse(why: str) -> ResultError:
        return ResultError(MSG_SUMS_DO_NOT_FIT.format(where=where, why=why))

    try:
        histogram = parse_searches_histogram(text)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if histogram is None:
        return None
    values, people = histogram
    try:
        errors = float(row["errors"])
        squares = float(row["errors_squared"])
        cross = float(row["errors_searches"])
        per_search = float(row["errors_squared_per_search"])
        trials = float(row["n_searches"])
    except KeyError as exc:
        raise refuse(f"no {exc.args[0]} column beside the histogram") from None
    except (TypeError, ValueError):
        raise refuse("a sum that is not a number") from None
    if float(np.dot(values.astype(np.float64), people)) != trials:
        held = int(np.dot(values, people))
        raise refuse(f"the histogram holds {held} searches, the row {trials:g}")
    listed = row.get("n_subjects")
    if listed is not None and np.isfinite(float(listed)) and int(people.sum()) != float(listed):
        raise refuse(f"the histogram holds {int(people.sum())} people, the row {listed}")
    why = _sums_fit(errors, squares, cross, per_search, values, people)
    if why is not None:
        raise refuse(why)
    return PeopleSums(
        errors=np.array([errors]),
        squares=np.array([squares]),
        cross=np.array([cross]),
        squares_per_search=np.array([per_search]),
        searches=values,
        people=people,
    )
