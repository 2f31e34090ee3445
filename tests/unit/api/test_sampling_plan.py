"""The sampling audit's arithmetic (docs/sampling.md): the acceptance-sampling size against the
hypergeometric rule and the documented table, the seed, the proportional allocation, the draw
and the error rate's interval."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.services.sampling_plan import (
    allocate,
    choose,
    derive_seed,
    estimate,
    parse_quarter,
    quarter_of,
    sample_size,
    wilson_interval,
    zero_defect_probability,
)
from catalog import PopulationRecord, SecurityClass
from dangan.errors import InvalidInputError

# The table in docs/sampling.md, "The sample size".
DOCUMENTED = {
    1: 1,
    5: 5,
    10: 10,
    20: 19,
    21: 16,
    50: 31,
    100: 45,
    200: 51,
    500: 56,
    1000: 57,
    10000: 59,
}


def _exact_p0(population: int, defects: int, n: int) -> float:
    return math.comb(population - defects, n) / math.comb(population, n)


@pytest.mark.parametrize(("population", "expected"), sorted(DOCUMENTED.items()))
def test_the_size_is_the_documented_table(population: int, expected: int) -> None:
    assert sample_size(population) == expected


@pytest.mark.parametrize("population", [1, 7, 19, 20, 21, 37, 100, 333, 1000, 4321])
def test_the_size_is_the_smallest_meeting_the_rule(population: int) -> None:
    # The rule, with exact binomial coefficients: D = ceil(5% of N), P(X=0) <= 5%, n smallest.
    defects = max(1, math.ceil(population * 5 / 100))
    n = sample_size(population)
    assert _exact_p0(population, defects, n) <= 0.05
    assert n == 1 or _exact_p0(population, defects, n - 1) > 0.05
    assert zero_defect_probability(population, defects, n) == pytest.approx(
        _exact_p0(population, defects, n)
    )


def test_an_empty_quarter_draws_nothing() -> None:
    assert sample_size(0) == 0


def test_quarters_parse_and_bound() -> None:
    q = parse_quarter("2026Q3")
    assert (q.start, q.end) == (
        dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )
    assert parse_quarter("2026q4").end == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert quarter_of(dt.datetime(2026, 11, 23, tzinfo=dt.UTC)) == parse_quarter("2026Q4")
    for bad in ("2026Q5", "2026-3", "Q3", "", "1800Q1"):
        with pytest.raises(InvalidInputError):
            parse_quarter(bad)


def test_the_seed_depends_on_quarter_and_head() -> None:
    a = derive_seed(parse_quarter("2026Q3"), "ab" * 32)
    assert a == derive_seed("2026Q3", "ab" * 32)
    assert a != derive_seed("2026Q4", "ab" * 32)
    assert a != derive_seed("2026Q3", "ac" * 32)
    assert len(a) == 64


@given(st.lists(st.integers(0, 50), min_size=1, max_size=12), st.data())
def test_allocation_is_exact_and_proportional(sizes: list[int], data: st.DataObject) -> None:
    total = sum(sizes)
    n = data.draw(st.integers(0, total))
    shares = allocate(sizes, n)
    assert sum(shares) == n
    for share, size in zip(shares, sizes, strict=True):
        assert 0 <= share <= size
        if total:
            assert abs(share - n * size / total) < 1  # never more than one seat off


def _population(k: int) -> list[PopulationRecord]:
    types = ("新生入学", "学籍变更", "奖励")
    clerks = ("clerk1", "clerk2")
    return [
        PopulationRecord(
            i, f"2026-{types[i % 3]}-{i:03d}", types[i % 3], clerks[i % 2], SecurityClass.internal
        )
        for i in range(1, k + 1)
    ]


@given(st.integers(1, 300), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_the_same_seed_draws_the_same_sample(k: int, head: str) -> None:
    population = _population(k)
    seed = derive_seed("2026Q3", head)
    n = sample_size(k)
    first, strata = choose(population, seed, n)
    again, _ = choose(list(reversed(population)), seed, n)
    assert [r.archive_code for r in first] == [r.archive_code for r in again]
    assert len({r.archive_code for r in first}) == n
    assert sum(s.drawn for s in strata) == n


def test_another_seed_draws_another_sample() -> None:
    population = _population(300)
    n = sample_size(300)
    a, _ = choose(population, derive_seed("2026Q3", "0" * 64), n)
    b, _ = choose(population, derive_seed("2026Q3", "1" * 64), n)
    assert {r.archive_code for r in a} != {r.archive_code for r in b}


def test_the_wilson_interval() -> None:
    low, high = wilson_interval(0, 59)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(0.0611, abs=1e-3)
    e = estimate(45, 3)
    assert e.rate == pytest.approx(3 / 45)
    assert e.low == pytest.approx(0.0229, abs=1e-3)
    assert e.high == pytest.approx(0.1790, abs=1e-3)
    assert estimate(0, 0).high == 1.0
