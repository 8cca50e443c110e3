"""The HTML report escapes CRM text end to end: hostile names, owners and labels planted in the
native sandbox records go through pull, reconcile and `crmsync report --format html`, and the
page neither carries them as markup nor runs them in a browser (headless Chromium)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import start_sandbox
from sync.report_html import PAGE_TITLE
from sync.sandbox_config import write_sandbox_config
from tests.report.chromium import CHROMIUM, NO_CHROMIUM, dump_dom
from tests.sandbox_env import crmsync_env, warm_crmsync

SCRIPT = "<script>document.title='pwned'</script>"
ATTRIBUTE = '"><img src=x onerror="document.title=\'pwned\'">'
CLOSE_SCRIPT = "</script><script>document.title='pwned'</script>"
LINK = "<a href=\"javascript:document.title='pwned'\">javascript:document.title='pwned'</a>"
PAYLOADS = (SCRIPT, ATTRIBUTE, CLOSE_SCRIPT, LINK)


def _plant(dataset: dict[str, Any]) -> dict[str, Any]:
    """Payloads in CRM-supplied text of the native records; every deal of a system is hit so
    each lands in the stale/past-due lists and the charts whatever the generator picked."""
    sf, hs, pd = dataset["salesforce"], dataset["hubspot"], dataset["pipedrive"]
    for deal in sf["Opportunity"]:
        deal["Name"] = f"{SCRIPT} {deal['Name']}"
    user = sf["User"][0]
    user["Name"] = f"Eve {ATTRIBUTE}"
    user["Email"] = f"eve{ATTRIBUTE}@example.com"
    owner = hs["owners"][0]
    owner["lastName"] = ATTRIBUTE
    owner["email"] = f"eve{ATTRIBUTE}@example.com"
    pipeline = hs["pipelines"][0]
    pipeline["label"] = CLOSE_SCRIPT
    for stage in pipeline["stages"]:
        stage["label"] = f"{CLOSE_SCRIPT} {stage['label']}"
    for deal in pd["deals"]:
        deal["title"] = f"{LINK} {deal['title']}"
    return dataset


def _crmsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*warm_crmsync(), *args], env=crmsync_env(), capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("xss")
    dataset = _plant(generate(30, 11)[0])
    with start_sandbox(dataset, workdir=folder) as sandbox:
        config = folder / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        plan = _crmsync("reconcile", "--dry-run", "--config", str(config))
        assert plan.returncode in (0, 3), plan.stderr  # 3: conflicts or limits, still a plan
        page = folder / "r.html"
        made = _crmsync("report", "--format", "html", "--out", str(page), "--config", str(config))
        assert made.returncode in (0, 3) and page.exists(), made.stderr  # 3: thresholds breached
    return page


def test_report_html_carries_no_planted_payload_as_markup(report_page: Path) -> None:
    html = report_page.read_text(encoding="utf-8")
    for payload in PAYLOADS:
        assert payload not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html  # it did arrive
    assert html.count("<script") == 3  # plotly, the chart data, the bootstrap: nothing else
    assert not re.search(r"<(img|a)\b[^>]*(onerror|javascript:)", html, re.IGNORECASE)


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_report_in_chromium_keeps_its_title_and_draws_its_charts(report_page: Path) -> None:
    dom = dump_dom(report_page)
    assert f"<title>{PAGE_TITLE}</title>" in dom
    assert dom.count('class="main-svg"') >= 6  # plotly drew the charts (2 svg layers each)
    assert not re.search(r"<img\b", dom, re.IGNORECASE)  # the attribute payload made no element
    # Plotly reads pseudo-HTML in chart text: the planted <a> must show as text, not a link.
    labels = re.findall(r"<text[^>]*data-unformatted=\"[^\"]*javascript:[^>]*>(.*?)</text>", dom)
    assert labels, "the stale-deals chart shows no planted Pipedrive title"
    assert all("<a" not in label for label in labels), labels[0]
    assert not re.search(r"<a\b[^>]*href=\"\s*javascript:", dom, re.IGNORECASE)
