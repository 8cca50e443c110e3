"""Engine benchmark: match + diff + plan over synthetic deals, against a pandas-merge baseline.

Run: .venv/bin/pytest tests/benchmarks/test_engine_bench.py -m benchmark -s
Prints one JSON line per size. Targets: 1M deals per side within 20 s and 2 GB, at least 3x
faster than pandas doing the same join + compare, growth roughly linear.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

import psutil
import pytest

from mapping.codec import deal_from_json, deal_to_json
from mapping.model import Deal, DealStatus, Money, Ref
from sync.diff import comparable, diff
from sync.match import MatchConfig, match, paused_gc
from sync.normalize import match_keys
from sync.plan import build_plan
from sync.policy import DIFF_FIELDS, Policy, PolicyRule

SF, HS = "salesforce", "hubspot"
STAGES = ("lead", "qualified", "proposal", "negotiation")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Dataset:
    deals: dict[str, list[Deal]]
    links: dict[Ref, str]
    bases: dict[str, dict[str, Any]]
    planted: int  # field differences planted
    changed: frozenset[Ref]  # what a nightly pull would report new or changed: the new deals
    # (not linked yet) and the deals carrying a planted difference


def _deal(system: str, id: str, name: str, i: int, amount: Decimal, **kw: Any) -> Deal:
    """A deal as a reconcile loads it from the store: decoded from its stored payload, which
    shares the values deals repeat (owners, stages, dates, amounts) as a real store's do."""
    return deal_from_json(deal_to_json(_built(system, id, name, i, amount, **kw)))


def _built(system: str, id: str, name: str, i: int, amount: Decimal, **kw: Any) -> Deal:
    return Deal(
        ref=Ref(system, id),
        name=name,
        pipeline="default",
        stage=kw.get("stage", STAGES[i % 4]),
        native_stage=STAGES[i % 4],
        status=DealStatus.OPEN,
        value=Money(amount, "USD"),
        close_date=date(2024, 1 + i % 12, 1 + i % 28),
        owner_email=f"owner{i % 50}@example.com",
        probability=None,
        created_at=T0 + timedelta(seconds=i),
        updated_at=T0 + timedelta(seconds=i),
        external_ids=kw.get("external_ids", {}),
    )


def generate(n: int, seed: int = 7, *, new: bool = True) -> Dataset:
    """A steady-state nightly run: 90% already linked (with a base), 5% linked by an external
    id, 5% new deals found by their key; ~1% of the deals differ in amount or stage. Without
    `new`, every deal is linked already: only the ~1% that differ changed since the last run.

    Each instance's deals are built in its own listing order, one instance after the other,
    as loading them from the store does: the hubspot list is in another order than the
    salesforce one, but neither is scattered over the other's memory."""
    rng = random.Random(seed)
    rolls = [rng.random() for _ in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    sf: list[Deal] = []
    links: dict[Ref, str] = {}
    bases: dict[str, dict[str, Any]] = {}
    changed: set[Ref] = set()
    for i, roll in enumerate(rolls):
        a = _deal(SF, f"006{i:012d}", f"Deal {i} Holdings Inc", i, Decimal(1000 + i % 9000))
        b_ref = Ref(HS, str(10_000_000 + i))  # as the store would hand it: not the deal's own
        kind = i % 20 if new else -1
        if kind in (0, 1):
            changed.update((a.ref, b_ref))
        else:
            entity = f"E{i:010d}"
            links[a.ref] = links[b_ref] = entity
            bases[entity] = dict(zip(DIFF_FIELDS, comparable(a), strict=True))
        if roll < 0.02:
            changed.add(b_ref)
        sf.append(a)
    hs: list[Deal] = []
    for i in order:
        roll, kind = rolls[i], i % 20 if new else -1
        kw: dict[str, Any] = {}
        if roll < 0.01:
            kw["stage"] = STAGES[(i + 1) % 4]
        if kind == 0:
            kw["external_ids"] = {SF: f"006{i:012d}"}
        # deals found by key are spelled differently (equal once normalised)
        name = f"DEAL {i} HOLDINGS, Inc." if kind == 1 else f"Deal {i} Holdings Inc"
        amount = Decimal(1000 + i % 9000) + (1 if 0.01 <= roll < 0.02 else 0)
        hs.append(_deal(HS, str(10_000_000 + i), name, i, amount, **kw))
    planted = sum(roll < 0.02 for roll in rolls)
    return Dataset({SF: sf, HS: hs}, links, bases, planted, frozenset(changed))


def run_engine(data: Dataset, changed: frozenset[Ref] | None = None) -> dict[str, Any]:
    """match + diff + plan, from the Deal lists to the plan (the ref index included). The
    cyclic collector waits for the whole engine, as in a reconcile (`sync.reconcile.analyze`):
    a collection between the steps would rescan the match result for no cycles."""
    with paused_gc():
        return _engine(data, changed)


def _engine(data: Dataset, changed: frozenset[Ref] | None) -> dict[str, Any]:
    config = MatchConfig(keys=("name", "close_month"))
    matched = match(data.deals, data.links, config, changed=changed)
    by_ref = {d.ref: d for deals in data.deals.values() for d in deals}
    policies = {"name": Policy(PolicyRule.NEVER)}
    diffed = diff(matched.entities, by_ref, data.bases, policies, {SF, HS}, changed=changed)
    plan = build_plan(
        matched,
        diffed,
        by_ref,
        run_id="bench",
        created_at=T0,
        config_fingerprint="bench",
        batch_sizes={SF: 200, HS: 100},
    )
    return dict(plan.summary)


def changed_input(data: Dataset) -> Dataset:
    """What an incremental reconcile hands the engine (sync/incremental.py, load_changed): the
    changed deals and the other members of their entities, never the whole store."""
    touched = {data.links[r] for r in data.changed if r in data.links}
    wanted = data.changed | {r for r, e in data.links.items() if e in touched}
    deals = {s: [d for d in group if d.ref in wanted] for s, group in data.deals.items()}
    return dataclasses.replace(data, deals=deals)


def run_incremental(data: Dataset) -> dict[str, Any]:
    return run_engine(data, data.changed)


ENGINE_INCLUDES = (
    "from the same Deal lists: match (stored links, external ids, normalised keys, same-key "
    "duplicates, ambiguity), three-way diff against the bases, plan with summary"
)
PANDAS_INCLUDES = (
    "from the same Deal lists: DataFrames built, merges on stored links, external ids and "
    "normalised keys (unique keys only), per-field compare of the joined rows; no bases, "
    "no policies, no plan"
)

FLOOR_INCLUDES = (
    "from the same Deal lists, none of the engine's semantics: fields of every deal read, "
    "stored links looked up, match keys built, bases read, linked pairs compared in numpy"
)


def run_pandas(data: Dataset) -> int:
    """The same join + compare with pandas merges: links, then external ids, then keys."""
    import pandas as pd

    def frame(deals: list[Deal]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "id": [d.id for d in deals],
                "entity": [data.links.get(d.ref) for d in deals],
                "ext": [d.external_ids.get(SF) for d in deals],
                "name": [d.name for d in deals],
                "stage": [d.stage for d in deals],
                "status": [d.status.value for d in deals],
                "amount": [d.value.amount if d.value else None for d in deals],
                "currency": [d.value.currency if d.value else None for d in deals],
                "close": [d.close_date for d in deals],
                "owner": [d.owner_email for d in deals],
                "probability": [d.probability for d in deals],
            }
        )

    left, right = frame(data.deals[SF]), frame(data.deals[HS])
    for df in (left, right):
        words = df["name"].str.casefold().str.replace(r"[\W_]+", " ", regex=True)
        df["key"] = words.str.replace(r"\b(inc|llc|ltd|co)\b", "", regex=True).str.split().str.join(
            " "
        ) + pd.to_datetime(df["close"]).dt.strftime("%Y-%m")
    by_link = left.dropna(subset=["entity"]).merge(
        right.dropna(subset=["entity"]), on="entity", suffixes=("_l", "_r")
    )
    by_ext = left.merge(
        right.dropna(subset=["ext"]), left_on="id", right_on="ext", suffixes=("_l", "_r")
    )
    rest_l = left[left["entity"].isna() & ~left["id"].isin(right["ext"])]
    rest_r = right[right["entity"].isna() & right["ext"].isna()]
    by_key = rest_l.drop_duplicates("key", keep=False).merge(
        rest_r.drop_duplicates("key", keep=False), on="key", suffixes=("_l", "_r")
    )
    joined = pd.concat([by_link, by_ext, by_key], ignore_index=True)
    fields = ("stage", "status", "amount", "currency", "close", "owner", "probability")
    differing = 0
    for f in fields:
        lv, rv = joined[f + "_l"], joined[f + "_r"]
        differing += int(((lv != rv) & ~(lv.isna() & rv.isna())).sum())
    return differing


_FLOOR_FIELDS = attrgetter(
    "ref", "name", "stage", "status", "value", "close_date", "owner_email", "probability",
    "extra", "external_ids", "link_id",
)  # fmt: skip


def run_floor(data: Dataset) -> int:
    """What any engine working on these Deal objects in CPython cannot skip, done as cheaply
    as CPython allows and with none of the engine's semantics: read the compared fields and
    the rare ones (extras, claims) of every deal, look up every deal's stored link, build
    every live deal's match key (same-key duplicates within an instance need them all), read
    the base of every linked entity, and compare the linked pairs column-wise in numpy.
    Its time over pandas' is the best speed-up the engine could reach from Deal lists. The
    cyclic collector waits, as it does in the engine (`paused_gc`)."""
    with paused_gc():
        return _floor(data)


def _floor(data: Dataset) -> int:
    import numpy as np

    sides = [data.deals[SF], data.deals[HS]]
    columns = [list(zip(*map(_FLOOR_FIELDS, deals), strict=True)) for deals in sides]
    entities = [list(map(data.links.get, cols[0])) for cols in columns]
    match_keys(sides[0] + sides[1], ("name", "close_month"))
    position = {e: j for j, e in enumerate(entities[1]) if e is not None}
    linked = [(i, position[e], e) for i, e in enumerate(entities[0]) if e in position]
    lefts, rights, names = zip(*linked, strict=True)
    base_rows = list(map(_BASE_ROW, map(data.bases.__getitem__, names)))
    left, right = np.array(lefts), np.array(rights)
    equal = np.ones(len(linked), dtype=bool)
    for field in range(1, 8):
        a, b = (np.array(cols[field], dtype=object) for cols in columns)
        equal &= a[left] == b[right]
    return len(base_rows) - int(equal.sum())


_BASE_ROW = itemgetter(*DIFF_FIELDS)


class _PeakRss:
    """Samples this process's RSS in a thread: the peak of one phase, not of the whole run."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self.peak = self.start = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _measure(fn: Any, data: Dataset) -> tuple[float, float, Any]:
    """(wall seconds, peak extra MB over the dataset, result)."""
    gc.collect()
    with _PeakRss() as rss:
        start = time.perf_counter()
        result = fn(data)
        elapsed = time.perf_counter() - start
    return elapsed, (rss.peak - rss.start) / 2**20, result


def _sizes() -> list[int]:
    sizes = os.environ.get("ENGINE_BENCH_SIZES", "100000,1000000")
    return [int(s) for s in sizes.split(",")]


@pytest.mark.benchmark
def test_engine_scales_linearly_and_beats_pandas() -> None:
    rows = []
    print(
        json.dumps(
            {
                "engine_includes": ENGINE_INCLUDES,
                "pandas_includes": PANDAS_INCLUDES,
                "floor_includes": FLOOR_INCLUDES,
            }
        )
    )
    for n in _sizes():
        data = generate(n)
        gc.collect()
        gc.freeze()  # the dataset is input, not garbage: keep it out of every collection
        dataset_mb = psutil.Process(os.getpid()).memory_info().rss / 2**20
        engine_s, engine_mb, summary = _measure(run_engine, data)
        pandas_s, pandas_mb, pandas_diffs = _measure(run_pandas, data)
        floor_s, _, floor_diffs = _measure(run_floor, data)
        planted = data.planted
        del data
        gc.unfreeze()
        gc.collect()
        # The next night: everything linked, ~1% of the deals changed. The store hands the
        # engine only those and their entities' other members (selecting them is a query).
        steady = generate(n, new=False)
        changed = changed_input(steady)
        gc.collect()
        gc.freeze()
        incr_s, incr_mb, incremental = _measure(run_incremental, changed)
        row = {
            "deals_per_side": n,
            "engine_s": round(engine_s, 2),
            "pandas_s": round(pandas_s, 2),
            "speedup_vs_pandas": round(pandas_s / engine_s, 2),
            "floor_s": round(floor_s, 2),
            "floor_speedup_vs_pandas": round(pandas_s / floor_s, 2),
            "incremental_s": round(incr_s, 2),
            "incremental_changed_deals": len(steady.changed),
            "incremental_input_deals": sum(map(len, changed.deals.values())),
            "incremental_share_of_full": round(incr_s / engine_s, 4),
            "incremental_peak_extra_mb": round(incr_mb),
            "engine_peak_extra_mb": round(engine_mb),
            "pandas_peak_extra_mb": round(pandas_mb),
            "dataset_rss_mb": round(dataset_mb),
            "changes": summary["changes"],
            "conflicts": summary["conflicts"],
            "planted": planted,
            "pandas_differences": pandas_diffs,
            "floor_differences": floor_diffs,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        assert summary["matched"] == n
        assert summary["changes"] + summary["conflicts"] == planted
        assert incremental["changes"] + incremental["conflicts"] == steady.planted
        del steady, changed
        gc.unfreeze()
        gc.collect()
    small, big = rows[0], rows[-1]
    growth = (big["engine_s"] / small["engine_s"]) / (
        big["deals_per_side"] / small["deals_per_side"]
    )
    targets = {
        "time_growth_vs_linear": round(growth, 2),
        "le_20s_at_1m": big["engine_s"] <= 20 if big["deals_per_side"] >= 1_000_000 else None,
        "le_2gb_extra": big["engine_peak_extra_mb"] <= 2048,
        "ge_3x_pandas": big["speedup_vs_pandas"] >= 3,
    }
    print(json.dumps(targets), flush=True)
    # Memory is a hard limit; time targets are reported (the machine they run on varies).
    assert targets["le_2gb_extra"]
