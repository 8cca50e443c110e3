"""`crmsync init` proposes a pipeline's funnel from its name: HubSpot's and Pipedrive's
"Renewals" pipelines, new to a config that defines funnel `renewal`, get
`pipeline_funnels: {<pipeline>: renewal}` marked `# review:`, and their stage maps are proposed
in that funnel's stages. A config with no funnel besides the default gets no such guess."""

from __future__ import annotations

import re

import yaml

from tests.integration.conftest import World
from tests.integration.product_lines import RENEWAL
from tests.sandbox_env import run_crmsync

RENEWALS = {"hubspot": "renewals", "pipedrive": "2"}


def _without_renewals_maps(world: World, funnels: dict[str, object]) -> None:
    """The renewals pipelines as new to the config: no stage map, no funnel named for them."""
    document = yaml.safe_load(world.config.read_text())
    if funnels:
        document["funnels"] = funnels
    for system, pipeline in RENEWALS.items():
        instance = document["systems"][system]
        instance.pop("pipeline_funnels", None)
        del instance["stage_map"][pipeline]
        instance.get("stage_write", {}).pop(pipeline, None)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def test_init_proposes_the_funnel_a_pipeline_is_named_like(small_world: World) -> None:
    _without_renewals_maps(small_world, {"renewal": {"stages": RENEWAL}})

    done = run_crmsync("init", "--config", str(small_world.config))

    assert done.returncode == 0, done.stderr
    text = small_world.config.read_text()
    systems = yaml.safe_load(text)["systems"]
    for system, pipeline in RENEWALS.items():
        assert systems[system]["pipeline_funnels"] == {pipeline: "renewal"}, system
        assert set(systems[system]["stage_map"][pipeline].values()) <= {s["key"] for s in RENEWAL}
    assert "pipeline_funnels" not in systems["salesforce"]  # its one pipeline: Opportunities
    review = r"# review: pipeline 'Renewals' is named like funnel renewal"
    assert re.search(rf"renewals: renewal +{review}", text), text
    assert re.search(rf"'2': renewal +{review}", text), text
    assert "funnel(s) proposed" in done.stdout
    check = run_crmsync("check", "--offline", "--config", str(small_world.config))
    assert check.returncode == 0, check.stderr


def test_init_proposes_no_funnel_where_the_config_has_only_the_default(
    small_world: World,
) -> None:
    _without_renewals_maps(small_world, {})

    done = run_crmsync("init", "--config", str(small_world.config))

    assert done.returncode == 0, done.stderr
    systems = yaml.safe_load(small_world.config.read_text())["systems"]
    for system, pipeline in RENEWALS.items():
        assert "pipeline_funnels" not in systems[system], system
        assert systems[system]["stage_map"][pipeline]  # mapped in the default funnel
