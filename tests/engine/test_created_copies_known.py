"""A copy crmsync created and no pull has read yet is known from the audit (sync/known_writes.py)
in the native stage its instance writes the copy's funnel stage as."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import load_config
from sync.known_writes import created_copy
from sync.store_records import AuditEntry
from tests.engine.engine_deals import T0, deal

CONFIG = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    credentials: {access_token: "${HS}"}
  pipedrive:
    kind: pipedrive
    credentials: {api_token: "${PD}"}
    stage_map:
      "1": {"2": qualified, "3": proposal, "4": proposal}
"""


@pytest.mark.parametrize(
    ("stage_write", "native"),
    [('    stage_write: {"1": {proposal: "4"}}\n', "4"), ("", "3")],
    ids=["the_stage_write_stage", "else_the_first_mapped"],
)
def test_a_created_copy_not_yet_pulled_is_known_in_the_stage_its_funnel_stage_is_written_as(
    tmp_path: Path, stage_write: str, native: str
) -> None:
    path = tmp_path / "crmsync.yaml"
    path.write_text(CONFIG + stage_write)
    config = load_config(path, env={"HS": "h" * 10, "PD": "p" * 10})
    source = deal("hubspot", "h1", stage="proposal")
    after = {"source": "hubspot:h1", "link_id": "ent-1", "values": {}}
    entry = AuditEntry("run-1", "pipedrive", "77", None, None, after, "created", T0)
    copy = created_copy(entry, {source.ref: source}, config.stages_written("pipedrive"))
    assert copy is not None
    assert (copy.pipeline, copy.native_stage, copy.stage) == ("1", native, "proposal")
