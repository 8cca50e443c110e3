"""Sandbox speed and size: list pages of 100 served per second, memory for 1M deals.

Run: .venv/bin/pytest tests/benchmarks/test_sandbox_bench.py -m benchmark -s
Prints one JSON object per measurement; asserts nothing about time (noise).
"""

from __future__ import annotations

import copy
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
import pytest
import requests

from connectors.hubspot_paths import objects
from connectors.sandbox.dataset import save_dataset
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import start_sandbox

pytestmark = pytest.mark.benchmark
CRMSYNC = str(Path(sys.executable).with_name("crmsync"))

# (system, path of one page of 100 deals as the connectors read them, query)
PAGES = {
    "hubspot": (objects("deals"), {"limit": "100"}),
    "pipedrive": ("/api/v2/deals", {"limit": "100"}),
    "salesforce": (
        "/services/data/v59.0/query/",
        {"q": "SELECT Id, Name, StageName, Amount, CloseDate FROM Opportunity LIMIT 100"},
    ),
}


def _scaled(dataset: dict[str, Any], factor: int) -> dict[str, Any]:
    """The dataset with each system's deals repeated `factor` times under fresh ids."""
    out = copy.deepcopy(dataset)
    hs, pd, sf = (
        out["hubspot"]["deals"],
        out["pipedrive"]["deals"],
        out["salesforce"]["Opportunity"],
    )
    hs_base, pd_base, sf_base = list(hs), list(pd), list(sf)
    for n in range(1, factor):
        for d in hs_base:
            c = {**d, "id": f"{d['id']}{n:04d}", "properties": dict(d["properties"])}
            c["properties"]["hs_object_id"] = c["id"]
            hs.append(c)
        pd.extend({**d, "id": d["id"] * 10_000 + n} for d in pd_base)
        sf.extend({**d, "Id": f"{d['Id'][:-4]}{n:04d}"[-18:]} for d in sf_base)
    return out


def _wrk(url: str, headers: dict[str, str]) -> float:
    """Requests/s from wrk (a C load generator: a Python client would measure itself)."""
    command = ["wrk", "-t2", "-c8", "-d5s", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_list_requests_per_second_of_100_records(tmp_path: Path) -> None:
    """The sandbox in its own process (as `crmsync sandbox serve` runs it), loaded by wrk."""
    dataset, _ = generate(3000, 1)
    save_dataset(tmp_path / "data.json", dataset)
    ready = tmp_path / "ready.json"
    server = subprocess.Popen(
        [
            CRMSYNC,
            "sandbox",
            "serve",
            "--dataset",
            str(tmp_path / "data.json"),
            "--ready-file",
            str(ready),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        while not ready.exists():
            assert server.poll() is None
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        results = {}
        for system, (path, params) in PAGES.items():
            token = info["tokens"][system]
            header = {"x-api-token": token} if system == "pipedrive" else {}
            url = f"{info[system]}{path}?{urlencode(params)}"
            results[system] = round(_wrk(url, {"Authorization": f"Bearer {token}", **header}))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(json.dumps({"benchmark": "sandbox_list_pages_per_second", "page": 100,
                      "load": "wrk -t2 -c8", "server": "separate process", **results}))  # fmt: skip


def test_memory_for_one_million_deals_per_system() -> None:
    process = psutil.Process(os.getpid())
    dataset, _ = generate(2000, 2)
    gc.collect()
    before = process.memory_info().rss
    big = _scaled(dataset, 500)  # ~1M deals per system
    sizes = {
        "salesforce": len(big["salesforce"]["Opportunity"]),
        "hubspot": len(big["hubspot"]["deals"]),
        "pipedrive": len(big["pipedrive"]["deals"]),
    }
    loaded = process.memory_info().rss
    started = time.monotonic()
    with start_sandbox(big, systems=("hubspot",)) as sandbox:
        serving = process.memory_info().rss
        seconds = time.monotonic() - started
        response = requests.get(
            sandbox.urls["hubspot"] + objects("deals"),
            params={"limit": "100"},
            headers={"Authorization": f"Bearer {sandbox.tokens['hubspot']}"},
        )
        assert response.status_code == 200
    print(json.dumps({
        "benchmark": "sandbox_memory_1m_deals", "deals": sizes,
        "dataset_mb_all_three": round((loaded - before) / 2**20),
        "hubspot_emulator_extra_mb": round((serving - loaded) / 2**20),
        "hubspot_start_seconds": round(seconds, 2),
    }))  # fmt: skip
