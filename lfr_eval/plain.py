"""Figures in plain language for policy staff: one place where a number becomes words.

Every plain-language figure the workbench shows (the threshold explorer, the policy sentences
of :mod:`lfr_eval.explain`, a deployment's expected false alerts in :mod:`lfr_eval.operational`,
the evidence of a deployment config) goes through :func:`plain_count` or :func:`plain_rate`, so
three rules hold everywhere:

1. **A figure the data cannot bound is not printed as a number.** When the interval's upper end
   reaches half of everything possible while its low end is 100 times lower (e.g. "0.0
   expected false alerts, 95% CI 0–29,965" among 30,000 faces, from a 30-person watchlist
   scaled to 10,000), the text says the data cannot bound it and what data would
   (:class:`DataNeeded`: non-mated searches, people, filler
   gallery size).
2. **No lower bound of 0 when errors were seen** unless the method gave exactly 0: numbers are
   written with significant figures (:func:`format_number`), so 0.04 is never "0.0". With no
   error at all the figure is an upper bound ("at most 2.9"), not "0 (CI 0–2.9)".
3. **No "100 in 100"**: :func:`lfr_eval.operational.one_in_n` writes rates near 1 as "more
   than 99 in 100" and 1 as "every one".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: An upper bound at or above this share of everything possible bounds nothing ...
UNBOUNDED_SHARE = 0.5
#: ... when the interval also spans at least this factor (its low end is that far below):
#: a large figure measured well (e.g. nearly every face alerts at a very low threshold) is
#: bounded.
UNBOUNDED_SPAN = 100.0

#: Rule of three: with no error in n independent trials the 95% upper bound is about 3 / n.
RULE_OF_THREE = 3.0


def format_number(value: float, sig_figs: int = 2) -> str:
    """A count for people to read: whole numbers from 100 up (with thousands separators), one
    decimal from 1, ``sig_figs`` significant figures below 1, so a positive value never
    reads "0" or "0.0".

    Examples
    --------
    >>> format_number(29965.2), format_number(11.72), format_number(0.0423), format_number(0.0)
    ('29,965', '11.7', '0.042', '0')
    """
    if value is None or not math.isfinite(value):
        return "?"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    digits = max(sig_figs - 1 - math.floor(math.log10(abs(value))), 0)
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text and digits > 1 else text


@dataclass(frozen=True)
class DataNeeded:
    """What an evaluation would need for a figure to be bounded.

    Attributes
    ----------
    searches : int
        Non-mated searches (rule of three: no false positive among them gives an upper bound
        near the target rate).
    people : int
        Different people those searches come from (for clustered data, the bound is counted
        by people: as many people as searches in the worst case).
    filler_gallery : int or None
        Filler gallery (watchlist) size needed so the figure is measured, not extrapolated;
        None when the evaluated gallery is already large enough.
    evaluated_gallery : int or None
        The gallery size the evaluation had.
    target : str
        What the figure would then be bounded to, in words.
    """

    searches: int
    people: int
    filler_gallery: int | None = None
    evaluated_gallery: int | None = None
    target: str = ""

    def describe(self) -> str:
        text = (
            f"to bound it{' ' + self.target if self.target else ''}, an evaluation needs about "
            f"{self.searches:,} non-mated searches from about {self.people:,} different people"
        )
        if self.filler_gallery is not None:
            had = (
                f" (this one had {self.evaluated_gallery:,})"
                if self.evaluated_gallery is not None
                else ""
            )
            text += (
                f" and a filler gallery of at least {self.filler_gallery:,} people{had}, so the "
                "figure is measured rather than extrapolated"
            )
        return text


def data_needed_for_fpir(
    target_fpir: float,
    *,
    evaluated_watchlist_size: int,
    watchlist_size: int,
    target: str = "",
) -> DataNeeded:
    """The searches, people and filler gallery that would bound FPIR(N) at ``target_fpir``.

    ``target_fpir`` is at the deployed ``watchlist_size``; it is carried to the evaluated size
    through ``FPIR(N) = 1 - (1 - FMR)^N`` and the rule of three gives the non-mated searches
    (about 3 / FPIR at the evaluated size), counted by people as clustered data require.
    """
    target_fpir = min(max(float(target_fpir), 1e-12), 0.999)
    fmr = -math.expm1(math.log1p(-target_fpir) / max(int(watchlist_size), 1))
    at_evaluated = -math.expm1(max(int(evaluated_watchlist_size), 1) * math.log1p(-fmr))
    searches = int(math.ceil(RULE_OF_THREE / max(at_evaluated, 1e-300)))
    gallery = int(watchlist_size) if watchlist_size > evaluated_watchlist_size else None
    return DataNeeded(
        searches=searches,
        people=searches,
        filler_gallery=gallery,
        evaluated_gallery=int(evaluated_watchlist_size) if gallery else None,
        target=target,
    )


@dataclass(frozen=True)
class PlainFigure:
    """A figure with its interval, checked and written out for people.

    Attributes
    ----------
    value, low, high : float
        The estimate and its interval (``low`` is 0 for an upper bound).
    confidence : float
    bounded : bool
        False when the data cannot bound the figure: :attr:`text` then says so instead of
        giving the number.
    upper_only : bool
        No error was observed: the figure is an upper bound.
    text : str
        The figure with its interval ("4.2 (95% CI 1.3–9.8)", "at most 2.9 (95% upper
        bound; none seen)") or "not bounded by these data".
    value_text, interval_text : str
        The two parts of :attr:`text` (for a metric and its caption).
    needs : DataNeeded or None
        What data would bound it (given when not bounded).
    """

    value: float
    low: float
    high: float
    confidence: float
    bounded: bool
    upper_only: bool
    text: str
    value_text: str
    interval_text: str
    needs: DataNeeded | None = None

    def sentence(self) -> str:
        """:attr:`text`, followed by what data would bound it when it is not bounded."""
        if self.bounded or self.needs is None:
            return self.text
        return f"{self.text}: {self.needs.describe()}"


def _unbounded(
    value: float, low: float, high: float, confidence: float, needs: DataNeeded | None
) -> PlainFigure:
    return PlainFigure(
        value=value,
        low=low,
        high=high,
        confidence=confidence,
        bounded=False,
        upper_only=False,
        text="not bounded by these data",
        value_text="not bounded",
        interval_text="these data cannot bound it",
        needs=needs,
    )


def plain_count(
    value: float,
    low: float,
    high: float,
    *,
    total: float,
    errors: int,
    confidence: float = 0.95,
    needs: DataNeeded | None = None,
) -> PlainFigure:
    """An expected count (e.g. false alerts per deployment) in plain language.

    Parameters
    ----------
    value, low, high : float
        Expected count and its interval, in ``[0, total]``.
    total : float
        Everything that could be counted (e.g. faces of people not listed).
    errors : int
        Errors the estimate rests on (0: the figure is an upper bound).
    needs : DataNeeded, optional
        What would bound it, shown when the data cannot.
    """
    pct = f"{confidence:.0%}"
    finite = all(math.isfinite(v) for v in (value, low, high))
    if not finite or (
        total > 0 and high >= UNBOUNDED_SHARE * total and low * UNBOUNDED_SPAN <= high
    ):
        return _unbounded(value, low, high, confidence, needs)
    if errors == 0:
        interval = f"upper end of the {pct} CI; none seen in the evaluation"
        return PlainFigure(
            value, 0.0, high, confidence, True, True,
            f"at most {format_number(high)} ({interval})",
            f"at most {format_number(high)}", interval, needs,
        )  # fmt: skip
    interval = f"{pct} CI {format_number(low)}–{format_number(high)}"
    return PlainFigure(
        value, low, high, confidence, True, False,
        f"{format_number(value)} ({interval})", format_number(value), interval, needs,
    )  # fmt: skip


def plain_rate(
    value: float,
    low: float,
    high: float,
    *,
    errors: int,
    confidence: float = 0.95,
    style: str = "one-in",
    needs: DataNeeded | None = None,
) -> PlainFigure:
    """A rate in [0, 1] in plain language: "1 in 6,000 (95% CI 1 in 9,100 – 1 in 3,100)"
    (``style="one-in"``), "89% (95% CI 85%–92%)" (``style="percent"``) or, for tables of
    rates, "0.00017 (95% CI 5.4e-05–0.00039)" (``style="number"``: three significant figures,
    never "0" for a positive number).

    The same rules as :func:`plain_count`: an upper bound at or above one half bounds nothing;
    with no error the figure is an upper bound.
    """
    from lfr_eval.operational import one_in_n

    pct = f"{confidence:.0%}"

    def fmt(v: float) -> str:
        if style == "percent":
            return _percent(v)
        if style == "number":
            return _significant(v)
        return one_in_n(v)

    finite = all(math.isfinite(v) for v in (value, low, high))
    if not finite:
        return _unbounded(value, low, high, confidence, needs)
    if style != "percent" and high >= UNBOUNDED_SHARE and errors == 0:
        return _unbounded(value, low, high, confidence, needs)
    if errors == 0:
        interval = f"upper end of the {pct} CI; none seen"
        return PlainFigure(
            value, 0.0, high, confidence, True, True,
            f"at most {fmt(high)} ({interval})", f"at most {fmt(high)}", interval, needs,
        )  # fmt: skip
    dash = "–" if style == "percent" else " – "  # "1 in 9,100 – 1 in 3,100" needs the spaces
    interval = f"{pct} CI {fmt(low)}{dash}{fmt(high)}"
    return PlainFigure(
        value, low, high, confidence, True, False,
        f"{fmt(value)} ({interval})", fmt(value), interval, needs,
    )  # fmt: skip


def _significant(value: float) -> str:
    """Three significant figures, so a positive number never reads 0 (``"1.23e-05"``) and a
    share below 1 never reads 1 (``"0.9996"``: an identification rate's upper end with
    misses seen is not "1")."""
    if value == 0:
        return "0"
    text = f"{value:.3g}"
    digits = 3
    while text == "1" and value < 1 and digits < 8:
        digits += 1
        text = f"{value:.{digits}g}"
    return "more than 0.9999999" if text == "1" and value < 1 else text


def rate_cell(
    value: float, low: float, high: float, *, errors: float, confidence: float = 0.95
) -> str:
    """One table cell for a rate and its interval, by this module's rules (the report's and the
    app's tables): ``"–"`` without a rate, else :func:`plain_rate` with ``style="number"``."""
    figure = _table_figure(value, low, high, errors, confidence)
    return "–" if figure is None else figure.text


def interval_cell(
    value: float, low: float, high: float, *, errors: float, confidence: float = 0.95
) -> str:
    """The interval part of :func:`rate_cell`, for a table that shows the rate in its own
    column ("95% CI 5.4e-05–0.00039", "upper end of the 95% CI; none seen", "these data
    cannot bound it")."""
    figure = _table_figure(value, low, high, errors, confidence)
    return "–" if figure is None else figure.interval_text


def _table_figure(
    value: float, low: float, high: float, errors: float, confidence: float
) -> PlainFigure | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return plain_rate(
        float(value), float(low), float(high), errors=int(errors), confidence=confidence,
        style="number",
    )  # fmt: skip


def _percent(value: float) -> str:
    """A share as a percentage that never reads 0% or 100% unless it is exactly that."""
    if value == 0 or value == 1:
        return f"{value:.0%}"
    text = f"{value:.0%}"
    if text == "0%":
        return f"{format_number(100 * value)}%"
    if text == "100%":
        return "more than 99.5%"
    return text


__all__ = [
    "UNBOUNDED_SHARE",
    "DataNeeded",
    "PlainFigure",
    "data_needed_for_fpir",
    "format_number",
    "interval_cell",
    "plain_count",
    "plain_rate",
    "rate_cell",
]
