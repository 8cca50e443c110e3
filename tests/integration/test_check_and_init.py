"""`crmsync init` and `crmsync check` against live sandboxes, as a user runs them."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import generate
from connectors.sandbox.launcher import start_sandbox
from sync.commands.check import same_zone
from sync.sandbox_config import write_sandbox_config
from tests.integration.conftest import World, retire
from tests.sandbox_env import warm_crmsync


def run(*args: str) -> tuple[int, str, str]:
    done = subprocess.run([*warm_crmsync(), *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_check_passes_on_the_mapping_init_proposed(small_world: World) -> None:
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0, err
    assert len(re.findall(r"^ok: \w+: connected", out, re.M)) == 3
    assert "problem:" not in out


def test_check_names_a_pipedrive_instance_its_copies_could_not_be_created_in(
    small_world: World,
) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    del document["systems"]["pipedrive"]["create_org_id"]
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run("check", "--config", str(small_world.config))
    assert code == 2
    problem = (
        "problem: pipedrive: push.create_missing is on, and Pipedrive refuses a deal linked to "
        "no person or organization: set systems.pipedrive.create_org_id to the organization "
        "crmsync's "
    )
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        problem + "copies of deals with no account, or with one several organizations are named "
        "after, belong to"  # the rest go to the organization named like their account
    ]
    document["systems"]["pipedrive"]["create_org_by"] = "create_org_id"
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run("check", "--config", str(small_world.config))
    assert code == 2
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        problem + "copies belong to"
    ]
    document["systems"]["pipedrive"]["create_org_id"] = 1
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0 and "problem:" not in out, out + err


def test_check_warns_that_copies_into_a_crm_without_a_link_field_may_be_made_twice(
    small_world: World,
) -> None:
    """Without a link marker, a copy whose create answer was lost cannot be looked up before
    it is sent again: a warning, online and offline (the config works, but not idempotently)."""
    document = yaml.safe_load(small_world.config.read_text())
    document["push"]["create_missing"] = True
    del document["systems"]["hubspot"]["link_field"]
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    warning = (
        "warning: hubspot: push.create_missing is on and systems.hubspot.link_field is not "
        "set: a copy created there carries no link marker, so one whose answer was lost can be "
        "created twice; set it to a deal property you create for crmsync"
    )
    for offline in (("--offline",), ()):
        code, out, err = run("check", "--config", str(small_world.config), *offline)
        assert code == 0, out + err
        assert [line for line in out.splitlines() if "link_field" in line] == [warning]
    document["push"]["create_missing"] = False
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run("check", "--config", str(small_world.config), "--offline")
    assert code == 0 and "link_field" not in out


def test_check_warns_that_create_from_without_create_missing_copies_nothing(
    small_world: World,
) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    document["push"].update(create_missing=False, create_from=["pipedrive"])
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(small_world.config), "--offline")
    assert code == 0, out + err
    assert (
        "warning: push.create_from is set and push.create_missing is off: no copy is made; turn "
        "create_missing on to copy the deals of those instances"
    ) in out.splitlines()
    document["push"]["create_missing"] = True
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    assert "create_from" not in run("check", "--config", str(small_world.config), "--offline")[1]


def test_check_names_an_unmapped_stage_with_its_deal_count_and_exits_2(
    small_world: World,
) -> None:
    config = small_world.config
    assert run("pull", "--config", str(config))[0] == 0  # so check can count the stored deals
    document = yaml.safe_load(config.read_text())
    stages = document["systems"]["hubspot"]["stage_map"]["default"]
    del stages["qualifiedtobuy"]
    del document["systems"]["hubspot"]["stage_write"]["default"]["qualified"]  # init's, for it
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(config))
    assert code == 2
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1
    assert re.fullmatch(
        r"problem: hubspot: pipeline default: native stage 'qualifiedtobuy' is not in "
        r"systems\.hubspot\.stage_map\.default \(\d+ deal\(s\)\); map it to a funnel stage there "
        r"\(`crmsync init` proposes one where it can tell, and says why where not\)",
        problems[0],
    )
    assert err == "crmsync: error: 1 problem(s) found; see the lines above\n"


def test_check_names_a_hubspot_portal_zone_the_config_does_not_say_and_exits_2(
    small_world: World,
) -> None:
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.time_zone = "America/Los_Angeles"
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 2, err
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert problems == [
        "problem: hubspot: the portal's time zone is America/Los_Angeles, "
        "systems.hubspot.timezone is UTC: close dates would be read and written a day off; "
        "set `timezone: America/Los_Angeles`"
    ]

    document = yaml.safe_load(small_world.config.read_text())
    document["systems"]["hubspot"]["timezone"] = "America/Los_Angeles"
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    hubspot.time_zone = "US/Pacific"  # an old alias of the same zone
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0, out + err
    assert "problem:" not in out


def test_check_shows_a_portal_zone_with_control_characters_as_written(small_world: World) -> None:
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.time_zone = "Evil\x1b[2J/Zone"
    code, out, _ = run("check", "--config", str(small_world.config))
    hubspot.time_zone = "UTC"
    assert code == 0 and "\x1b" not in out
    assert "the portal's time zone Evil\\x1b[2J/Zone is in no tz database" in out


def test_check_warns_of_a_portal_zone_it_cannot_look_up_rather_than_ask_for_it(
    small_world: World,
) -> None:
    # A zone newer than this machine's tz database (Europe/Kyiv before tzdata 2022b) is no
    # value systems.<hubspot>.timezone can take: asking for it left check failing for good.
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.time_zone = "Europe/Atlantis"
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0 and "problem:" not in out, out + err
    assert (
        "warning: hubspot: the portal's time zone Europe/Atlantis is in no tz database here; "
        "make sure systems.hubspot.timezone (UTC) keeps the clocks of the one in HubSpot's "
        "Settings > Account Defaults"
    ) in out.splitlines()


def test_check_warns_when_the_token_may_not_read_the_portal_zone(small_world: World) -> None:
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.account_scope = False
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0, out + err
    assert re.search(
        r"^warning: hubspot: could not read the portal's time zone \(.*\); make sure "
        r"systems\.hubspot\.timezone \(UTC\) is the one in HubSpot's Settings > Account "
        r"Defaults$",
        out,
        re.M,
    ), out


def test_check_reports_rejected_credentials_in_one_line_without_the_secret(
    small_world: World,
) -> None:
    config = small_world.config
    document = yaml.safe_load(config.read_text())
    document["systems"]["pipedrive"]["credentials"]["api_token"] = "wrong-canary-token-123"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(config))
    assert code == 2
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and problems[0].startswith("problem: pipedrive: ")
    assert "wrong-canary-token-123" not in out + err


@pytest.mark.parametrize("store", ["closed port", "path under a file"])
def test_check_reports_a_store_it_cannot_open_in_one_line_and_still_tests_every_crm(
    small_world: World, tmp_path: Path, store: str
) -> None:
    """A store URL typo (or PostgreSQL down) is one finding of check, not the end of it."""
    with socket.socket() as unlistened:  # bound, never listening: connections are refused
        unlistened.bind(("127.0.0.1", 0))
        port = unlistened.getsockname()[1]
        (tmp_path / "a-file").write_text("")
        document = yaml.safe_load(small_world.config.read_text())
        document["store"] = (
            f"postgresql+psycopg://crmsync:store-canary-secret@127.0.0.1:{port}/test"
            if store == "closed port"
            else f"sqlite:///{tmp_path / 'a-file' / 'crmsync.db'}"
        )
        small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
        code, out, err = run("check", "--config", str(small_world.config))
    assert code == 1, out + err
    assert len(re.findall(r"^ok: \w+: connected", out, re.M)) == 3, out + err
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and problems[0].startswith("problem: store: "), out
    assert err.endswith("crmsync: error: 1 problem(s) found; see the lines above\n")
    assert "store-canary-secret" not in out + err


def test_check_without_its_store_says_why_an_unmapped_stages_deal_count_is_unknown(
    small_world: World, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    document = yaml.safe_load(small_world.config.read_text())
    document["store"] = f"sqlite:///{tmp_path / 'a-file' / 'crmsync.db'}"
    del document["systems"]["hubspot"]["stage_map"]["default"]["qualifiedtobuy"]
    del document["systems"]["hubspot"]["stage_write"]["default"]["qualified"]  # init's, for it
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 2, out + err  # the stage map's problem; the store's alone would be 1
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 2 and problems[0].startswith("problem: store: "), out
    assert problems[1].startswith(
        "problem: hubspot: pipeline default: native stage 'qualifiedtobuy' is not in "
        "systems.hubspot.stage_map.default (deal count unknown: the store could not be opened)"
    ), out


def test_init_keeps_the_users_edits_and_comments(small_world: World) -> None:
    config: Path = small_world.config
    text = config.read_text()
    text = text.replace("      default:  # pipeline: Sales Pipeline", "      default:  # ours")
    edited = re.sub(r"(\n\s+closedwon:) won", r"\1 won  # we checked this", text)
    document = yaml.safe_load(edited)
    del document["systems"]["hubspot"]["stage_map"]["default"]["contractsent"]
    # keep comments: remove the line textually rather than through a YAML round trip
    edited = re.sub(r"\n\s+contractsent: \w+[^\n]*", "", edited)
    edited = edited.replace("qualifiedtobuy: qualified", "qualifiedtobuy: proposal", 1)
    config.write_text(edited)
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    after = config.read_text()
    assert "# we checked this" in after and "# ours" in after
    stages = yaml.safe_load(after)["systems"]["hubspot"]["stage_map"]["default"]
    assert stages["qualifiedtobuy"] == "proposal"  # the user's choice stands
    assert stages["contractsent"] == "negotiation"  # the gap is proposed again
    assert "hubspot: 2 pipeline(s), 1 stage(s) added" in out


def test_init_proposes_the_pipedrive_stage_proposal_is_written_in_and_keeps_the_users(
    small_world: World,
) -> None:
    """Pipedrive's default pipeline maps "Demo Scheduled" (3) by its position and "Proposal
    Made" (4) by its name to proposal: deals moved to proposal are written in the one named so."""
    config: Path = small_world.config
    text = config.read_text()  # the sandbox's config is init's
    proposed = (
        "    stage_write:\n      '1':  # pipeline: Sales\n        proposal: '4'  # review: of "
        "'Demo Scheduled', 'Proposal Made', the one named like the funnel stage\n"
    )
    assert proposed in text
    # The user picks Demo Scheduled, and drops one of HubSpot's choices.
    edited = text.replace("proposal: '4'  # review: of", "proposal: '3'  # ours, was: of")
    edited = re.sub(r"\n\s+negotiation: decisionmakerboughtin[^\n]*", "", edited)
    config.write_text(edited)
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    after = config.read_text()
    assert "proposal: '3'  # ours, was: of" in after
    writes = yaml.safe_load(after)["systems"]
    assert writes["pipedrive"]["stage_write"] == {"1": {"proposal": "3"}}
    assert writes["hubspot"]["stage_write"]["default"] == {
        "qualified": "qualifiedtobuy",
        "negotiation": "decisionmakerboughtin",
    }
    lines = out.splitlines()
    assert "pipedrive: 2 pipeline(s), 0 stage(s) added to the stage map" in lines
    assert (
        "hubspot: 2 pipeline(s), 0 stage(s) added to the stage map, stage_write proposed for 1 "
        "shared funnel stage(s)"
    ) in lines


def test_check_names_a_stage_write_of_a_stage_the_crm_does_not_have(small_world: World) -> None:
    document = yaml.safe_load(small_world.config.read_text())
    pipedrive = document["systems"]["pipedrive"]
    pipedrive["stage_map"]["1"]["99"] = "proposal"
    pipedrive["stage_write"] = {"1": {"proposal": "99"}}
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, _ = run("check", "--config", str(small_world.config))
    assert code == 2
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        "problem: pipedrive: systems.pipedrive.stage_map.1.99: no such stage in the CRM "
        "(renamed or removed?)",
        "problem: pipedrive: systems.pipedrive.stage_write.1.proposal: no such stage '99' in the "
        "CRM (renamed or removed?)",
    ]


def test_init_writes_the_hubspot_portals_time_zone_once_and_keeps_the_users(
    small_world: World,
) -> None:
    config: Path = small_world.config
    assert "timezone: UTC  # the portal's (crmsync init)" in config.read_text()  # the sandbox's
    config.write_text(re.sub(r"\n\s+timezone: UTC[^\n]*", "", config.read_text()))
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.time_zone = "Australia/Sydney"
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert (
        "hubspot: the portal's time zone Australia/Sydney written to systems.hubspot.timezone"
        in out
    )
    assert (
        yaml.safe_load(config.read_text())["systems"]["hubspot"]["timezone"] == "Australia/Sydney"
    )
    assert "timezone: Australia/Sydney  # the portal's (crmsync init)" in config.read_text()
    assert run("check", "--config", str(config))[0] == 0

    text = config.read_text().replace("timezone: Australia/Sydney", "timezone: Asia/Tokyo")
    config.write_text(text)
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert "time zone" not in out
    assert yaml.safe_load(config.read_text())["systems"]["hubspot"]["timezone"] == "Asia/Tokyo"


def test_init_says_why_it_wrote_no_portal_time_zone_the_token_may_not_read(
    small_world: World,
) -> None:
    config: Path = small_world.config
    config.write_text(re.sub(r"\n\s+timezone: UTC[^\n]*", "", config.read_text()))
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.account_scope = False
    code, _, err = run("init", "--config", str(config))
    assert code == 0, err
    assert "timezone" not in yaml.safe_load(config.read_text())["systems"]["hubspot"]
    assert "hubspot: could not read the portal's time zone" in err


def test_init_leaves_a_users_comment_above_the_key_it_describes(small_world: World) -> None:
    config: Path = small_world.config
    text = config.read_text()
    # the user dropped two proposals and wrote comments about what follows them
    text = re.sub(r"\n        closedlost: lost[^\n]*", "", text, count=1)  # hubspot default
    note = "      # renewals: checked by sales ops"
    text = text.replace("\n      renewals:", f"\n{note}\n      renewals:")
    start = text.index("\n    stage_map:", text.index("\n  pipedrive:"))
    end = text.index("\nmatching:")
    text = text[:start] + "\n# matching: names only, see ticket 42" + text[end:]
    config.write_text(text)
    code, _out, err = run("init", "--config", str(config))
    assert code == 0, err
    after = config.read_text().splitlines()
    assert after[after.index("matching:") - 1] == "# matching: names only, see ticket 42"
    renewals = next(i for i, line in enumerate(after) if line.startswith("      renewals:"))
    assert after[renewals - 1] == note
    hubspot = yaml.safe_load("\n".join(after))["systems"]["hubspot"]["stage_map"]["default"]
    assert hubspot["closedlost"] == "lost"


def test_a_pipeline_label_cannot_write_lines_into_the_config(tmp_path: Path) -> None:
    """The label is CRM text in a `# pipeline:` comment; its newline ended the comment, so a
    label could add keys to the config (or break it, and with it `init` and `sandbox serve`)."""
    dataset = generate(20, 5)[0]
    injected = "Sales\npush:\n  max_changes: 1\n#"
    dataset["pipedrive"]["pipelines"][0]["name"] = injected
    with start_sandbox(dataset, systems=["pipedrive"], workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
    document = yaml.safe_load(config.read_text())
    assert document["push"]["max_changes"] != 1
    assert "# pipeline: Sales\\x0apush:\\x0a  max_changes: 1\\x0a#" in config.read_text()


def test_a_stage_id_no_config_key_can_hold_is_skipped_with_a_warning_and_the_config_loads(
    tmp_path: Path,
) -> None:
    """A stage id of several lines (or blanks around it) went into the stage map as a key the
    config refuses: `init` wrote a config that no command, itself included, could load."""
    dataset = generate(20, 5)[0]
    stage = dataset["hubspot"]["pipelines"][0]["stages"][2]
    stage["id"] = "qualified\nmatching: {}"
    with start_sandbox(dataset, systems=["hubspot"], workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)  # `sandbox serve --config-out`
        document = yaml.safe_load(config.read_text())
        del document["systems"]["hubspot"]["stage_map"]["default"]["closedwon"]
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert err == (
        "crmsync: warning: hubspot: pipeline default stage 'qualified\\nmatching: {}' not added"
        " to the stage map: its id cannot be a config key (empty, over 200 characters, several"
        " lines, or blanks around it); its deals stay unmapped\n"
    )
    assert "hubspot: 2 pipeline(s), 1 stage(s) added" in out
    assert run("check", "--offline", "--config", str(config))[0] == 0
    stages = yaml.safe_load(config.read_text())["systems"]["hubspot"]["stage_map"]["default"]
    assert stages["closedwon"] == "won" and not [key for key in stages if "\n" in key]


@pytest.mark.parametrize(
    ("one", "other", "same"),
    [
        ("Europe/Berlin", "Europe/Berlin", True),
        ("US/Eastern", "America/New_York", True),
        ("Europe/Berlin", "Europe/Paris", True),  # other names, the same clocks since 1980
        ("America/Phoenix", "America/Denver", False),  # alike in winter, not in summer
        ("UTC", "Europe/London", False),
        ("Mars/Base", "UTC", False),
    ],
)
def test_zones_are_the_same_when_their_clocks_are(one: str, other: str, same: bool) -> None:
    assert same_zone(one, other, datetime(2026, 11, 28, tzinfo=UTC)) is same


@pytest.mark.parametrize("answer", [[{"timeZone": "UTC"}], "UTC", 7])
def test_check_and_init_warn_in_one_line_of_an_account_answer_that_is_no_object(
    small_world: World, answer: Any
) -> None:
    config: Path = small_world.config
    document = yaml.safe_load(config.read_text())
    for key in ("timezone", "currency"):  # both for init to read
        del document["systems"]["hubspot"][key]
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.account_answer = (200, answer)
    code, out, err = run("check", "--config", str(config))
    assert code == 0 and "unexpected" not in out + err, out + err
    # the currency comes in the same answer; both commands word what they could not read alike
    unread = ("the portal's time zone", "the portal's company currency")
    for what in unread:
        assert re.search(rf"^warning: hubspot: could not read {what} \(", out, re.M), out
    code, out, err = run("init", "--config", str(config))
    assert code == 0 and "unexpected" not in err, err
    for what in unread:
        assert f"hubspot: could not read {what} (" in err, err
    assert not {"timezone", "currency"} & set(
        yaml.safe_load(config.read_text())["systems"]["hubspot"]
    )


def test_check_and_init_show_a_refusal_of_the_account_call_without_its_escape_codes(
    small_world: World,
) -> None:
    config: Path = small_world.config
    config.write_text(re.sub(r"\n\s+timezone: UTC[^\n]*", "", config.read_text()))
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    refusal = {"status": "error", "message": "\x1b[2J\x1b]0;owned\x07", "category": "\x1b[31m"}
    hubspot.account_answer = (403, refusal)
    code, out, err = run("check", "--config", str(config))
    assert code == 0, out + err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J\\x1b]0;owned\\x07" in out
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b[2J\\x1b]0;owned\\x07" in err


def test_a_refused_account_call_that_quotes_the_token_shows_no_token(small_world: World) -> None:
    # The account-info call carries an Authorization header built by hand: a refusal that
    # quotes it (the echo fault, as a careless proxy) is masked like every other call's.
    config: Path = small_world.config
    config.write_text(re.sub(r"\n\s+timezone: UTC[^\n]*", "", config.read_text()))
    server = small_world.sandbox.servers["hubspot"]
    server.faults.set(Faults(echo_credentials=True))
    server.emulator.account_scope = False  # type: ignore[attr-defined]
    token = small_world.sandbox.ready_info()["tokens"]["hubspot"]
    done = [run("--verbose", "check", "--config", str(config))]
    done.append(run("--verbose", "init", "--config", str(config)))
    printed = "\n".join(text for _, out, err in done for text in (out, err))
    assert "could not read the portal's time zone" in printed
    assert "(request: " in printed, "the sandbox quoted no credential"
    assert token not in printed


def test_init_writes_no_yaml_a_portal_zone_smuggles_in(small_world: World) -> None:
    config: Path = small_world.config
    config.write_text(re.sub(r"\n\s+timezone: UTC[^\n]*", "", config.read_text()))
    before = yaml.safe_load(config.read_text())
    hubspot: Any = small_world.sandbox.servers["hubspot"].emulator
    hubspot.time_zone = "UTC\n    base_url: https://evil.example # \x1b[2J"
    code, _, err = run("init", "--config", str(config))
    assert code == 0, err
    # worded as `check` words it
    assert (
        "the portal's time zone UTC\\x0a    base_url: https://evil.example # \\x1b[2J is in no tz "
        "database here" in err
    )
    after = yaml.safe_load(config.read_text())
    assert set(after["systems"]["hubspot"]) == set(before["systems"]["hubspot"])
    assert "evil" not in config.read_text()


def test_init_leaves_an_open_stage_named_lost_for_a_person_and_check_names_it(
    tmp_path: Path,
) -> None:
    """Pipedrive keeps won and lost as a status, so such a stage is open: `init` mapped it by
    its position, to negotiation, marked only as a guess."""
    dataset = generate(20, 5)[0]
    stages = dataset["pipedrive"]["stages"]
    last = max((s for s in stages if s["pipeline_id"] == 1), key=lambda s: s["order_nr"])
    lost = {**last, "id": 99, "name": "Lost", "order_nr": last["order_nr"] + 1}
    stages.append(lost)
    with start_sandbox(dataset, systems=["pipedrive"], workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        document = yaml.safe_load(config.read_text())
        assert "99" not in document["systems"]["pipedrive"]["stage_map"]["1"]
        code, out, err = run("init", "--config", str(config))
        assert code == 0, err
        assert "pipedrive: 2 pipeline(s), 0 stage(s) added to the stage map, 1 left for you" in out
        assert err.startswith(
            "crmsync: warning: pipedrive: pipeline 1 stage '99' ('Lost') not added to the stage "
            "map: open in the CRM but named 'lost' like a closed stage: map it by hand"
        )
        document = yaml.safe_load(config.read_text())
        assert "99" not in document["systems"]["pipedrive"]["stage_map"]["1"]
        code, out, _ = run("check", "--config", str(config))
    assert code == 2
    assert "problem: pipedrive: pipeline 1: native stage '99' is not in" in out


def test_check_warns_of_stored_deals_in_a_pipeline_the_crm_no_longer_lists(
    tmp_path: Path,
) -> None:
    """A HubSpot pipeline deleted through the API while it held deals is archived and listed
    no more: the plan counted its deals in unmapped stages and pointed at `check`, which said
    nothing of them (no listed stage lacks a map)."""
    dataset = generate(60, 11)[0]
    for pipeline in dataset["hubspot"]["pipelines"]:
        if pipeline["id"] == "renewals":
            pipeline["archived"] = True
    left = sum(d["properties"]["pipeline"] == "renewals" for d in dataset["hubspot"]["deals"])
    assert left, "the generated portal lacks deals in the pipeline this test archives"
    with start_sandbox(dataset, systems=["hubspot"], workdir=tmp_path) as sandbox:
        config = tmp_path / "crmsync.yaml"
        write_sandbox_config(sandbox.ready_info(), config)
        assert run("pull", "--config", str(config))[0] == 0
        code, out, err = run("check", "--config", str(config))
    assert code == 0, out + err
    assert (
        f"warning: hubspot: {left} stored deal(s) are in pipeline 'renewals', which hubspot no "
        "longer lists (deleted or archived there): their stages cannot be mapped; restore the "
        "pipeline there, or move its deals to a live one, and pull again"
    ) in out.splitlines(), out


def _copies_into(world: World, *targets: str, keys: Sequence[str] | None = None) -> None:
    """push.create_missing into `targets`; `keys`: the match keys (else as they are)."""
    document = yaml.safe_load(world.config.read_text())
    document["push"].update(create_missing=True, targets=list(targets))
    if keys is not None:
        document["matching"]["keys"] = list(keys)
    world.config.write_text(yaml.safe_dump(document, sort_keys=False))


def _companies_warning(world: World) -> list[str]:
    """`check`'s warnings that the HubSpot token may not read companies."""
    world.sandbox.servers["hubspot"].emulator.companies_scope = False
    code, out, err = run("check", "--config", str(world.config))
    assert code == 0, out + err
    warning = "warning: hubspot: the token may not read companies"
    return [line for line in out.splitlines() if line.startswith(warning)]


GRANT = (
    "warning: hubspot: the token may not read companies (grant crm.objects.companies.read to "
    "the app): "
)


def test_check_warns_when_the_token_may_not_read_the_companies_accounts_come_from(
    small_world: World,
) -> None:
    """Without crm.objects.companies.read a pull reads HubSpot deals without accounts, and
    their Pipedrive copies go to create_org_id: found out at the migration, not before."""
    warning = "warning: hubspot: the token may not read companies"
    _copies_into(small_world, "pipedrive")
    out = run("check", "--config", str(small_world.config))[1]
    assert not [line for line in out.splitlines() if line.startswith(warning)], out
    assert _companies_warning(small_world) == [
        f"{GRANT}its deals are read without accounts, so their copies in pipedrive go to "
        "create_org_id"
    ]


def test_check_warns_that_copies_into_hubspot_get_no_company_without_the_companies_scope(
    small_world: World,
) -> None:
    """A copy made in HubSpot is associated with the company of its account's name, which a
    token without crm.objects.companies.read cannot look up: found out before the migration.
    Its deals read without accounts cost nothing here (no copies elsewhere, no account key),
    and the warning says nothing of them."""
    _copies_into(small_world, "hubspot")
    assert _companies_warning(small_world) == [
        f"{GRANT}the copies crmsync makes in it are associated with no company"
    ]


def test_check_names_each_cost_of_hubspot_deals_read_without_accounts_once(
    small_world: World,
) -> None:
    """Copies into every CRM and the account match key: one sentence each, in the words of the
    CRM the copies go to (a Salesforce copy of a deal read without an account gets no
    Account)."""
    _copies_into(
        small_world,
        "salesforce",
        "hubspot",
        "pipedrive",
        keys=["name", "account", "close_month"],
    )
    assert _companies_warning(small_world) == [
        f"{GRANT}its deals are read without accounts, so their copies in salesforce get no "
        "Account, their copies in pipedrive go to create_org_id and the account match key "
        "finds none of them; and the copies crmsync makes in it are associated with no company"
    ]


def test_check_says_nothing_of_copies_crmsync_does_not_make_without_the_companies_scope(
    small_world: World,
) -> None:
    """create_missing off (the sandbox config's), no account key: HubSpot deals read without
    accounts cost nothing."""
    assert _companies_warning(small_world) == []


def test_check_names_a_salesforce_id_field_the_org_lacks_which_the_pull_cannot_read(
    small_world: World,
) -> None:
    # "ok: deals readable" from check, then every pull failed on the field (INVALID_FIELD).
    document = yaml.safe_load(small_world.config.read_text())
    document["systems"]["salesforce"]["external_ids"]["hubspot"] = "EMEA_Opportunity_Id__c"
    small_world.config.write_text(yaml.safe_dump(document, sort_keys=False))
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 2, out + err
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1, out
    assert problems[0].startswith("problem: salesforce: ")
    assert "EMEA_Opportunity_Id__c" in problems[0]
    assert "ok: salesforce" not in out


def _undefined_id_field_is_named_by_check_and_fails_the_pull(
    world: World, system: str, *, problem: str, pull: tuple[str, ...], failure: str
) -> None:
    """`system`'s field of Salesforce ids (its `external_ids.salesforce`) undefined there:
    check's one problem is `problem`, the pull (with `pull` options) fails with `failure`
    (`{key}` the field), and once defined again check passes."""
    key = yaml.safe_load(world.config.read_text())["systems"][system]["external_ids"]["salesforce"]
    faults = world.sandbox.servers[system].faults
    faults.set(Faults(undefined_properties=(key,)))
    code, out, err = run("check", "--config", str(world.config))
    assert code == 2, out + err
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and problems[0].startswith(
        f"problem: {system}: " + problem.format(key=key)
    ), out
    assert f"ok: {system}" not in out

    code, out, err = run("pull", "--system", system, *pull, "--config", str(world.config))
    assert code == 2, out + err
    assert failure.format(key=key) in err

    faults.set(Faults())
    assert run("check", "--config", str(world.config))[0] == 0


def test_check_and_pull_name_a_hubspot_id_property_the_portal_does_not_define(
    small_world: World,
) -> None:
    """HubSpot leaves a property it does not define out of every read, without a word: the
    salesforce ids it should hold would be lost to matching (and create_missing would copy
    those deals again). check names it, and the pull fails on it instead of reading on."""
    _undefined_id_field_is_named_by_check_and_fails_the_pull(
        small_world,
        "hubspot",
        problem="check: no deal property {key}: a property the config names (external_ids); "
        "create it in HubSpot",
        pull=(),
        failure="hubspot: list deals: no deal property {key}",
    )


def test_check_and_full_pull_name_a_pipedrive_id_field_the_account_does_not_define(
    small_world: World,
) -> None:
    """A custom field key the Pipedrive account lacks (keys are made per account) held no ids:
    matching lost them without a word, and create_missing copied those deals again. check
    names it, and a full pull fails on it before reading a deal."""
    _undefined_id_field_is_named_by_check_and_fails_the_pull(
        small_world,
        "pipedrive",
        problem="check: no deal field {key}: a field the config names (external_ids)",
        pull=("--full",),
        failure="pipedrive: list deals: no deal field {key}",
    )


def test_init_with_nothing_to_add_says_so_and_leaves_the_file_as_the_user_wrote_it(
    small_world: World,
) -> None:
    """It said "updated", and wrote lists it had not touched back in its own indentation."""
    config: Path = small_world.config
    text = config.read_text()
    assert "\n  - salesforce\n" in text
    text = re.sub(r"(?m)^(\s*)- ", r"\1  - ", text)  # the user's style: items indented
    config.write_text(text)

    code, out, err = run("init", "--config", str(config))

    assert code == 0, err
    assert config.read_text() == text
    assert f"left unchanged (it held all of it already) {config}" in out


def test_init_reads_the_indentation_from_the_configs_keys_not_from_a_list_item_above_them(
    small_world: World,
) -> None:
    """A block list of mappings above `systems:` (its items' keys sit deeper) made init take
    4 for the indentation and rewrite every line of the file in it."""
    config: Path = small_world.config
    text = config.read_text()
    schedule = "schedule:\n- name: nightly\n  cron: 0 2 * * *\n  job: reconcile\n"
    text = text.replace("\nsystems:\n", f"\n{schedule}systems:\n", 1)
    # every list's items indented, as many write them: `  - name: nightly` / `    cron: ...`
    text = re.sub(r"(?m)^(\s*)- ", r"\1  - ", text)
    lines = text.splitlines(keepends=True)
    at = lines.index("  - name: nightly\n")
    lines[at + 1 : at + 3] = ["    cron: 0 2 * * *\n", "    job: reconcile\n"]
    text = "".join(lines)
    config.write_text(text)

    code, _, err = run("init", "--config", str(config))

    assert code == 0, err
    assert config.read_text() == text


@dataclass(frozen=True)
class CompanyCurrency:
    """A world whose CRM says a company currency, and how crmsync names it there."""

    world: str  # the world's fixture
    system: str
    attribute: str  # the emulator's, holding the currency
    call: str  # the one request that tells it
    named: str
    deals: str  # the deals whose amounts are in it
    where: str  # where a person sets it


COMPANY_CURRENCIES = [
    pytest.param(
        CompanyCurrency(
            "small_world", "hubspot", "company_currency", "GET /account-info/2026-09/details",
            "the portal's company currency", "deals without a deal currency",
            "HubSpot's Settings > Account Defaults > Currency",
        ),
        id="hubspot",
    ),
    pytest.param(
        CompanyCurrency(
            "single_currency_world", "salesforce", "org_currency",
            "POST /services/Soap/u/{version}", "the org's currency", "its Opportunities",
            "Setup > Company Information > Currency Locale",
        ),
        id="salesforce",
    ),
]  # fmt: skip


@pytest.mark.parametrize("crm", COMPANY_CURRENCIES)
def test_check_names_a_crms_company_currency_the_config_does_not_say_and_exits_2(
    crm: CompanyCurrency, request: pytest.FixtureRequest
) -> None:
    """A HubSpot deal without a deal currency is in the portal's company currency (the default
    currency of new deals); a single-currency Salesforce org's Opportunities carry no
    CurrencyIsoCode: each amount is in the org's currency. Read in systems.<instance>.currency
    (USD unless set), a EUR portal's or org's amounts would be spread to the other CRMs as
    dollars."""
    world: World = request.getfixturevalue(crm.world)
    server = world.sandbox.servers[crm.system]
    setattr(server.emulator, crm.attribute, "EUR")
    before = server.stats.snapshot()["requests"].get(crm.call, 0)
    code, out, err = run("check", "--config", str(world.config))
    assert code == 2, out + err
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [
        f"problem: {crm.system}: {crm.named} is EUR, systems.{crm.system}.currency is USD: "
        f"amounts of {crm.deals} would be read as USD; set `currency: EUR`"
    ]
    # one call tells it (HubSpot's tells the portal's zone too)
    assert server.stats.snapshot()["requests"].get(crm.call, 0) == before + 1

    setattr(server.emulator, crm.attribute, "USD")
    code, out, err = run("check", "--config", str(world.config))
    assert code == 0 and "problem:" not in out, out + err

    setattr(server.emulator, crm.attribute, "Euro")  # no code a config could hold: not asked for
    code, out, err = run("check", "--config", str(world.config))
    assert code == 0 and "problem:" not in out, out + err
    assert (
        f"warning: {crm.system}: {crm.named} 'Euro' is no ISO 4217 code; make sure "
        f"systems.{crm.system}.currency (USD) is the one in {crm.where}"
    ) in out.splitlines(), out


@pytest.mark.parametrize("crm", COMPANY_CURRENCIES)
def test_init_writes_a_crms_company_currency_once_and_keeps_the_users(
    crm: CompanyCurrency, request: pytest.FixtureRequest
) -> None:
    """A HubSpot portal's, a single-currency Salesforce org's: written where the config names
    none (as a user's file may), never over a currency a user set."""
    world: World = request.getfixturevalue(crm.world)
    config: Path = world.config
    system, named = crm.system, crm.named
    document = yaml.safe_load(config.read_text())
    del document["systems"][system]["currency"]
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    setattr(world.sandbox.servers[system].emulator, crm.attribute, "EUR")
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert f"{system}: {named} EUR written to systems.{system}.currency" in out
    owner = named.split()[1]  # "portal's", "org's"
    assert f"currency: EUR  # the {owner} (crmsync init)" in config.read_text()
    assert run("check", "--config", str(config))[0] == 0

    config.write_text(config.read_text().replace("currency: EUR", "currency: GBP"))
    code, out, err = run("init", "--config", str(config))
    assert code == 0, err
    assert named not in out
    assert yaml.safe_load(config.read_text())["systems"][system]["currency"] == "GBP"


def test_check_asks_a_multi_currency_salesforce_org_for_no_currency_of_the_config(
    small_world: World,
) -> None:
    """Each Opportunity there names its own currency: the configured one reads none of them."""
    salesforce: Any = small_world.sandbox.servers["salesforce"].emulator
    salesforce.org_currency = "EUR"  # what it would say, were it single-currency
    code, out, err = run("check", "--config", str(small_world.config))
    assert code == 0 and "problem:" not in out and "the org's currency" not in out, out + err


def test_check_names_an_instance_the_store_holds_links_of_that_the_config_no_longer_has(
    small_world: World,
) -> None:
    """After a migration retires the CRM it moved off, the store keeps its links (README
    "Retiring an instance"): check said nothing of them, though another account given that
    instance name would have its deals paired by them."""
    world = small_world
    assert run("reconcile", "--dry-run", "--config", str(world.config))[0] == 0
    retire(world, "pipedrive")
    links = sum(m.get("pipedrive") is not None for m in world.members().values())

    code, out, err = run("check", "--config", str(world.config))

    assert code == 0, out + err
    assert (
        f"warning: store: it holds {links} link(s) of pipedrive, which crmsync.yaml no longer "
        "names: no run reads them; remove them with `crmsync forget pipedrive --apply` before "
        "giving that name to another account (its deals would be paired by them)"
    ) in out.splitlines(), out
