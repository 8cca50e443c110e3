"""`sandbox serve --faults SPEC` (and POST /__sandbox/faults): a spec the sandbox cannot honour
is refused with one line naming the fault, never served as something else."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.sandbox.faults import Faults, FaultSpecError, parse_faults
from sync.cli import main


def test_a_spec_sets_each_named_fault_and_keeps_the_rest() -> None:
    faults = parse_faults("latency=50ms,rate429=0.1,error5xx=0.05,seed=7,fail_ids=a|b")
    assert (faults.latency_ms, faults.rate429, faults.error5xx, faults.seed) == (50, 0.1, 0.05, 7)
    assert faults.fail_ids == ("a", "b") and faults.drop == Faults().drop
    assert parse_faults({"drop": 0.5}, faults).rate429 == 0.1  # POST merges into the current


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rate429=2", "fault rate429: '2' is a share of requests, within 0..1"),
        ("error5xx=-0.1", "fault error5xx: '-0.1' is a share of requests, within 0..1"),
        ("latency=-5ms", "fault latency: '-5ms' is negative"),
        ("burst429=-1", "fault burst429: '-1' is negative"),
        ("colour=red", "unknown fault 'colour'"),
        ("rate429", "fault 'rate429': expected key=value"),
        ("drop=lots", "fault drop: bad value 'lots'"),
    ],
)
def test_a_fault_the_sandbox_cannot_honour_is_refused(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        parse_faults(spec)
    assert str(raised.value).startswith(message)


def test_serve_refuses_a_bad_spec_with_exit_2_and_one_line(tmp_path: Path) -> None:
    dataset = tmp_path / "d.json"
    dataset.write_text("{}")
    out = CliRunner().invoke(
        main, ["sandbox", "serve", "--dataset", str(dataset), "--faults", "rate429=2"]
    )
    assert out.exit_code == 2
    assert out.stderr == (
        "crmsync: error: --faults: fault rate429: '2' is a share of requests, within 0..1\n"
    )
