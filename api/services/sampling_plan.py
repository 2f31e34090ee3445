"""The arithmetic of the quarterly sampling audit, apart from any database: quarters, the
acceptance-sampling size, the seed, the stratified allocation, the draw, and the error rate's
confidence interval (``docs/sampling.md`` derives each).

Pure functions of their arguments: the same inputs give the same sample on any machine and any
Python (the draw ranks records by SHA-256, never by a library's random generator).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from catalog import PopulationRecord
from dangan.errors import InvalidInputError

__all__ = [
    "CONFIDENCE",
    "DEFECT_RATE",
    "Estimate",
    "Quarter",
    "Stratum",
    "allocate",
    "choose",
    "derive_seed",
    "estimate",
    "parse_quarter",
    "quarter_of",
    "sample_size",
    "wilson_interval",
    "zero_defect_probability",
]

DEFECT_RATE: Final = 0.05
"""The error rate the sample must reveal: 5% or more of the quarter's records defective..."""
CONFIDENCE: Final = 0.95
"""...shows at least one defective item in the sample with this probability."""

_QUARTER = re.compile(r"^(\d{4})[Qq]([1-4])$")
_SEED_PREFIX: Final = "dangan-sampling-v1"  # changing the rule changes this prefix


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter; it starts and ends at midnight UTC."""

    year: int
    number: int

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, 3 * self.number - 2, 1, tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the quarter."""
        if self.number == 4:
            return dt.datetime(self.year + 1, 1, 1, tzinfo=dt.UTC)
        return dt.datetime(self.year, 3 * self.number + 1, 1, tzinfo=dt.UTC)


def parse_quarter(text: str) -> Quarter:
    """``2026Q3`` (or ``2026q3``) into a :class:`Quarter`.

    :raises InvalidInputError: anything else, or a year outside 1900–2200.
    """
    m = _QUARTER.match((text or "").strip())
    if m is None:
        raise InvalidInputError("a quarter reads YYYYQn, e.g. 2026Q3")
    year = int(m.group(1))
    if not 1900 <= year <= 2200:
        raise InvalidInputError("a quarter's year is between 1900 and 2200")
    return Quarter(year, int(m.group(2)))


def quarter_of(when: dt.datetime) -> Quarter:
    """The quarter an instant falls in (UTC)."""
    when = when.astimezone(dt.UTC)
    return Quarter(when.year, (when.month - 1) // 3 + 1)


def zero_defect_probability(population: int, defects: int, n: int) -> float:
    """P(a sample of ``n`` drawn without replacement from ``population`` items, ``defects``
    of them defective, holds no defective item): the hypergeometric P(X = 0),
    ``C(N−D, n) / C(N, n) = ∏_{i<n} (N−D−i) / (N−i)``."""
    if not 0 <= defects <= population or not 0 <= n <= population:
        raise ValueError("need 0 ≤ D ≤ N and 0 ≤ n ≤ N")
    p = 1.0
    for i in range(n):
        if population - defects - i <= 0:
            return 0.0
        p *= (population - defects - i) / (population - i)
    return p


def sample_size(
    population: int, *, defect_rate: float = DEFECT_RATE, confidence: float = CONFIDENCE
) -> int:
    """The smallest ``n`` such that, were ``D = ceil(defect_rate × N)`` of the ``N`` records
    defective (at least one), a sample of ``n`` would show at least one of them with
    probability ``confidence``: the smallest ``n`` with ``P(X = 0 | N, D, n) ≤ 1 − confidence``.
    Zero for an empty population."""
    if population < 0:
        raise ValueError("a population is never negative")
    if population == 0:
        return 0
    defects = max(1, math.ceil(defect_rate * population - 1e-9))
    risk = 1.0 - confidence
    for n in range(1, population + 1):
        if zero_defect_probability(population, defects, n) <= risk + 1e-12:
            return n
    return population


def derive_seed(quarter: Quarter | str, head_hash: str) -> str:
    """The draw's seed: SHA-256 of ``dangan-sampling-v1``, the quarter and the trail head's
    hash, one per line (hex). Nobody chooses it; anyone with the trail can recompute it."""
    text = f"{_SEED_PREFIX}\n{quarter}\n{head_hash}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Stratum:
    """One business type × clerk: how many records it has and how many were drawn."""

    business_type: str
    clerk: str
    size: int
    drawn: int


def allocate(sizes: Sequence[int], n: int) -> list[int]:
    """Share ``n`` among strata in proportion to their sizes (largest remainder, Hamilton):
    each gets ``floor(n·N_h/N)``, and the seats left go to the largest remainders, ties to
    the earlier stratum. The shares add up to ``n`` exactly and never exceed a stratum."""
    total = sum(sizes)
    if not 0 <= n <= total:
        raise ValueError("need 0 ≤ n ≤ N")
    if total == 0:
        return [0 for _ in sizes]
    # Integer arithmetic throughout: n·N_h = q·N + r, so floors and remainders are exact.
    shares = [(n * s) // total for s in sizes]
    remainders = [(n * s) % total for s in sizes]
    left = n - sum(shares)
    order = sorted(range(len(sizes)), key=lambda h: (-remainders[h], h))
    for h in order[:left]:
        shares[h] += 1
    return shares


def _rank(seed: str, archive_code: str) -> str:
    return hashlib.sha256(f"{seed}\n{archive_code}".encode()).hexdigest()


def choose(
    population: Sequence[PopulationRecord], seed: str, n: int
) -> tuple[list[PopulationRecord], list[Stratum]]:
    """Draw ``n`` records: strata (business type × clerk, in name order) get their
    proportional share, and in each the records with the smallest SHA-256(seed, code) are
    taken. Returns the sample (stratum by stratum, each in rank order) and the strata."""
    groups: dict[tuple[str, str], list[PopulationRecord]] = {}
    for rec in population:
        groups.setdefault((rec.business_type, rec.clerk), []).append(rec)
    keys = sorted(groups)
    shares = allocate([len(groups[k]) for k in keys], n)
    sample: list[PopulationRecord] = []
    strata = []
    for key, share in zip(keys, shares, strict=True):
        ranked = sorted(groups[key], key=lambda r: _rank(seed, r.archive_code))
        sample.extend(ranked[:share])
        strata.append(Stratum(key[0], key[1], len(groups[key]), share))
    return sample, strata


@dataclass(frozen=True)
class Estimate:
    """The sample's error rate with its 95% Wilson interval."""

    sampled: int
    defective: int
    rate: float
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default); (0, 1) for ``n = 0``."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(sampled: int, defective: int) -> Estimate:
    low, high = wilson_interval(defective, sampled)
    rate = defective / sampled if sampled else 0.0
    return Estimate(sampled, defective, rate, low, high)
