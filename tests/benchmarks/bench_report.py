"""The short human table printed after a benchmark session (the JSON file holds everything)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = ["summary_table"]


def _line(cells: Sequence[object], widths: Sequence[int]) -> str:
    return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _table(title: str, head: Sequence[str], rows: list[list[object]]) -> Iterator[str]:
    if not rows:
        return
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    yield f"== {title}"
    yield _line(head, widths)
    yield from (_line(r, widths) for r in rows)
    yield ""


def summary_table(rows: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    def of(kind: str) -> list[Mapping[str, Any]]:
        return [r for r in rows if r.get("bench") == kind]

    yield from _table(
        "API cost: requests seen by the sandbox vs lower bound (target <= bound + 2)",
        ["deals", "op", "system", "calls", "bound", "ratio", "seconds"],
        [
            [r["deals"], r["op"], r["system"], r["calls"], r["bound"], r["ratio"], r["seconds"]]
            for r in of("api_cost")
        ],
    )
    yield from _table(
        "Wall time under real rate limits + 50 ms latency (target <= 1.2x, 0 x 429)",
        ["deals", "wall_s", "slowest_min_s", "ratio", "429s", "calls sf/hs/pd"],
        [
            [
                r["deals"],
                r["wall_s"],
                r["slowest_min_s"],
                r["ratio_to_min"],
                r["received_429"],
                "/".join(str(s["calls"]) for s in r["systems"].values()),
            ]
            for r in of("wall_time")
        ],
    )
    yield from _table(
        "Peers: same sandbox, same data (full read of one system)",
        ["deals", "system", "peer", "records", "calls", "seconds"],
        [
            [r["deals"], r["system"], r["peer"], r["records"], r["calls"], r["seconds"]]
            for r in of("peers")
            if "system" in r
        ],
    )
    unusable = [r for r in of("peers") if r.get("usable") is False]
    if unusable:
        yield "== Independent extractors: none can be pointed at a base URL"
        yield from (f"{r['peer']}: {r['evidence']}" for r in unusable)
        yield ""
    yield from _table(
        "Engine: store load + match + diff + plan (targets 1M <= 20 s, <= 2 GB, >= 3x pandas)",
        ["deals/side", "load_s", "engine_s", "total_s", "peak_mb", "pandas_s", "speedup"],
        [
            [
                r["deals_per_side"],
                r["load_s"],
                r["engine_s"],
                r["total_s"],
                r["peak_extra_mb"],
                r["pandas_total_s"],
                r["speedup_vs_pandas"],
            ]
            for r in of("engine")
        ],
    )
