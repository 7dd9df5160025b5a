"""Identification (1:N) and verification (1:1) error rates, intervals and group frames."""

from __future__ import annotations

from lfr_eval.metrics._searches import SearchSet

__all__ = ["SearchSet"]
