"""`crmsync links`: inferred links are unconfirmed, explicit ones confirmed; a person splits a
wrong match (never matched again, incremental runs planning as full ones do) and joins deals by
hand (one entity from then on)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from mapping.model import Ref
from sync.cli import main
from tests.integration.conftest import World
from tests.integration.test_incremental_reconcile import _comparable, _pull_then_analyze


def _links(world: World, *args: str) -> Any:
    out = CliRunner().invoke(main, ["links", *args, "--config", str(world.config)])
    assert out.exit_code == 0, out.output
    return out


def _shown(world: World, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_links(world, "show", "--format", "json", *args).stdout)
    return rows


def _entity_of(world: World) -> dict[Ref, str]:
    return {Ref(r["system"], r["id"]): r["entity"] for r in _shown(world)}


def test_people_split_a_wrong_match_and_join_deals_by_hand(world: World) -> None:
    world.reconcile("links-r1")
    rows = _shown(world)
    assert {r["method"] for r in rows} >= {"key", "external_id"}
    for r in rows:  # the CRMs' own id fields are their word; a key match is an inference
        assert r["confirmed"] == (r["method"] in ("external_id", "link_id", "created", "manual"))
    doubtful = _shown(world, "--unconfirmed")
    assert doubtful and {r["entity"] for r in doubtful} < {r["entity"] for r in rows}
    entity = doubtful[0]["entity"]
    pair = sorted(Ref(r["system"], r["id"]) for r in doubtful if r["entity"] == entity)

    _links(world, "split", entity)
    assert not set(pair) & set(_entity_of(world))
    runs = CliRunner().invoke(main, ["runs", "--config", str(world.config), "--format", "json"])
    latest = json.loads(runs.stdout)[0]  # the correction is in the run history
    assert (latest["kind"], latest["status"]) == ("links", "ok")
    assert latest["counts"]["entities"] == {entity: [f"{r.system}:{r.id}" for r in pair]}
    full, incremental = _pull_then_analyze(world, "links-r2")
    assert incremental.scope.incremental
    assert _comparable(incremental) == _comparable(full)
    unmatched = {Ref(u["system"], u["id"]) for u in incremental.plan.unmatched}
    assert set(pair) <= unmatched, "split deals matched again by their key"

    _links(world, "join", *(f"{r.system}:{r.id}" for r in pair))
    world.reconcile("links-r3")
    joined = _entity_of(world)
    assert joined[pair[0]] == joined[pair[1]]
    rows = _shown(world, "--entity", joined[pair[0]])
    assert [(r["method"], r["confirmed"]) for r in rows] == [("manual", True)] * len(pair)
    _, after = _pull_then_analyze(world, "links-r4")
    assert not set(pair) & {Ref(u["system"], u["id"]) for u in after.plan.unmatched}


def test_confirm_marks_an_inferred_match_checked(world: World) -> None:
    world.reconcile("links-c1")
    entity = _shown(world, "--unconfirmed")[0]["entity"]
    _links(world, "confirm", entity)
    assert all(r["confirmed"] for r in _shown(world, "--entity", entity))
    assert entity not in {r["entity"] for r in _shown(world, "--unconfirmed")}


def test_corrections_that_cannot_be_made_change_nothing(world: World) -> None:
    world.reconcile("links-e1")
    before = _shown(world)
    linked = before[0]
    runner = CliRunner()
    cases = [
        (["join", f"{linked['system']}:{linked['id']}", "pipedrive:999999"], "already"),
        (["join", "hubspot:no-such-deal", "pipedrive:1"], "not in the store"),
        (["join", "hubspot:1", "hubspot:2"], "one deal per instance"),
        (["join", "hubspot"], "not INSTANCE:ID"),
        (["split", "E-no-such-entity"], "no links for entity E-no-such-entity"),
        (["confirm", "E-no-such-entity"], "no links for entity E-no-such-entity"),
    ]
    for args, message in cases:
        out = runner.invoke(main, ["links", *args, "--config", str(world.config)])
        assert out.exit_code == 2, (args, out.output)
        assert message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert _shown(world) == before
