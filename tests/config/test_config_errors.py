"""Every class of bad config yields one exact line: `file:line: key.path: what (expected)`."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from config import ConfigError, load_config

ENV = {"HUBSPOT_TOKEN": "hs-token-0123456789", "SF_SESSION": "sf-session-0123456789"}

# line numbers in the expectations below count from 1 in this text
BASE = """\
version: 1
systems:
  hubspot:
    kind: hubspot
    credentials:
      access_token: ${HUBSPOT_TOKEN}
    stage_map:
      default:
        closedwon: won
  salesforce:
    kind: salesforce
    credentials:
      session_id: ${SF_SESSION}
"""
# appended sections start at line 14
FUNNEL = """\
funnels:
  f:
    stages:
"""
A = "      - {key: a, phase: awareness, probability: 0.1}\n"
WON = "      - {key: w, phase: action, probability: 1, closed: true, won: true}\n"
LOST = "      - {key: l, phase: action, probability: 0, closed: true}\n"

# a stage_write of the hubspot instance, after its stage_map: its entry is on line 12
STAGE_WRITE = "    stage_write:\n      default:\n        {}\n"

STAGES = "lead, qualified, proposal, negotiation, won, lost"
FIELDS = "name, stage, status, amount, currency, close_date, owner_email, probability"

CASES: dict[str, tuple[str, str]] = {
    "unknown_top_level_key": (
        BASE + "pushh: {}\n",
        "14: pushh: unknown key 'pushh' (did you mean 'push'?)",
    ),
    "unknown_nested_key": (
        BASE + "push:\n  max_change: 3\n",
        "15: push.max_change: unknown key 'max_change' (did you mean 'max_changes'?)",
    ),
    "unknown_key_without_suggestion": (
        BASE + "push:\n  zzz: 3\n",
        "15: push.zzz: unknown key 'zzz'",
    ),
    "wrong_type": (
        BASE + "push:\n  max_changes: lots\n",
        "15: push.max_changes: must be a valid integer, unable to parse string as an integer"
        " (got 'lots')",
    ),
    "out_of_range": (
        BASE + "push:\n  max_changes: -1\n",
        "15: push.max_changes: must be greater than or equal to 0 (got -1)",
    ),
    "yes_no_for_a_number": (
        BASE + "push:\n  max_attempts: true\n",
        "15: push.max_attempts: must be a number, not true or false (got True)",
    ),
    "yes_no_for_a_threshold": (
        BASE + "matching:\n  fuzzy: {enabled: true, threshold: true}\n",
        "15: matching.fuzzy.threshold: must be a number, not true or false (got True)",
    ),
    "wrong_boolean": (
        BASE + "push:\n  create_missing: maybe\n",
        "15: push.create_missing: must be a valid boolean, unable to interpret input (got 'maybe')",
    ),
    "section_not_a_mapping": (
        BASE + "push: [1]\n",
        "14: push: must be a mapping (got a list)",
    ),
    "missing_required_key": (
        BASE.replace("version: 1\n", ""),
        "1: missing required key 'version'",
    ),
    "wrong_version": (
        BASE.replace("version: 1", "version: 2"),
        "1: version: invalid value 2 (expected 1)",
    ),
    "no_systems": ("version: 1\nsystems: {}\n", "2: systems: must not be empty"),
    "unknown_kind": (
        BASE.replace("kind: hubspot", "kind: hubspott"),
        "4: systems.hubspot.kind: unknown kind 'hubspott' (expected one of hubspot, pipedrive,"
        " salesforce) (did you mean 'hubspot'?)",
    ),
    "missing_kind": (
        BASE.replace("    kind: hubspot\n", ""),
        "3: systems.hubspot: missing required key 'kind' (expected one of hubspot, pipedrive,"
        " salesforce)",
    ),
    "credentials_of_another_kind": (
        BASE.replace("session_id: ${SF_SESSION}", "access_token: ${SF_SESSION}"),
        "12: systems.salesforce.credentials: credentials for kind salesforce must be one of:"
        " session_id | {username, password, security_token} | {consumer_key, consumer_secret};"
        " unknown key 'access_token'",
    ),
    "credentials_key_misspelt": (
        BASE.replace("session_id: ${SF_SESSION}", "sesion_id: ${SF_SESSION}"),
        "12: systems.salesforce.credentials: credentials for kind salesforce must be one of:"
        " session_id | {username, password, security_token} | {consumer_key, consumer_secret};"
        " unknown key 'sesion_id' (did you mean 'session_id'?)",
    ),
    "credentials_missing_key_of_mode": (
        BASE.replace("session_id: ${SF_SESSION}", "username: me\n      password: ${SF_SESSION}"),
        "12: systems.salesforce.credentials: missing required key 'security_token'",
    ),
    "credentials_unknown_key": (
        BASE.replace("session_id: ${SF_SESSION}", "session_id: ${SF_SESSION}\n      sesion: x"),
        "14: systems.salesforce.credentials.sesion: unknown key 'sesion'"
        " (did you mean 'session_id'?)",
    ),
    "unknown_funnel_stage": (
        BASE.replace("closedwon: won", "closedwon: wonn"),
        f"9: systems.hubspot.stage_map.default.closedwon: unknown funnel stage 'wonn'"
        f" (expected one of {STAGES})",
    ),
    "stage_write_of_an_unknown_funnel_stage": (
        BASE.replace(
            "closedwon: won\n", "closedwon: won\n" + STAGE_WRITE.format("wonn: closedwon")
        ),
        f"12: systems.hubspot.stage_write.default.wonn: unknown funnel stage 'wonn'"
        f" (expected one of {STAGES})",
    ),
    "stage_of_the_pipelines_own_funnel": (
        BASE.replace("    stage_map:", "    pipeline_funnels: {default: f}\n    stage_map:")
        + FUNNEL
        + A
        + WON
        + LOST,
        "10: systems.hubspot.stage_map.default.closedwon: unknown funnel stage 'won'"
        " (expected one of a, w, l); 'won' is a stage of funnel 'default', and pipeline default"
        " follows funnel 'f' (systems.hubspot.pipeline_funnels.default)",
    ),
    "unknown_pipeline_funnel": (
        BASE.replace("    stage_map:", "    pipeline_funnels: {default: nope}\n    stage_map:"),
        "7: systems.hubspot.pipeline_funnels.default: unknown funnel 'nope'"
        " (expected one of default)",
    ),
    "funnel_without_won_stage": (
        BASE + FUNNEL + A + LOST,
        "15: funnels.f: needs exactly one won stage, found 0",
    ),
    "funnel_with_two_won_stages": (
        BASE + FUNNEL + WON + WON.replace("key: w", "key: w2") + LOST,
        "15: funnels.f: needs exactly one won stage, found 2 (w, w2)",
    ),
    "funnel_without_lost_stage": (
        BASE + FUNNEL + A + WON,
        "15: funnels.f: needs at least one lost stage",
    ),
    "funnel_duplicate_keys": (
        BASE + FUNNEL + A + A + WON + LOST,
        "15: funnels.f: duplicate stage keys a",
    ),
    "won_stage_not_closed": (
        BASE + FUNNEL + WON.replace("closed: true, ", "") + LOST,
        "17: funnels.f.stages.0: a won stage must be closed",
    ),
    "stage_probability_out_of_range": (
        BASE + FUNNEL + A.replace("0.1", "1.5") + WON + LOST,
        "17: funnels.f.stages.0.probability: must be less than or equal to 1 (got 1.5)",
    ),
    "stage_phase_unknown": (
        BASE + FUNNEL + A.replace("awareness", "awarenes") + WON + LOST,
        "17: funnels.f.stages.0.phase: invalid value 'awarenes' (expected one of awareness,"
        " interest, decision, action) (did you mean 'awareness'?)",
    ),
    "policy_unknown_field": (
        BASE + "policies:\n  fields:\n    amout: newest\n",
        f"16: policies.fields.amout: unknown field 'amout' (expected one of {FIELDS})"
        " (did you mean 'amount'?)",
    ),
    "policy_unknown_source_of_truth": (
        BASE + "policies:\n  fields:\n    amount: {source_of_truth: pipedrive}\n",
        "16: policies.fields.amount.source_of_truth: unknown instance 'pipedrive'"
        " (expected one of hubspot, salesforce)",
    ),
    "policy_unknown_priority_instance": (
        BASE + "policies:\n  default:\n    priority:\n      - hubspot\n      - salesforse\n",
        "18: policies.default.priority.1: unknown instance 'salesforse'"
        " (expected one of hubspot, salesforce) (did you mean 'salesforce'?)",
    ),
    "policy_unknown_name": (
        BASE + "policies:\n  default: newst\n",
        "15: policies.default: invalid value 'newst' (expected one of conflict, newest, never)"
        " (did you mean 'newest'?)",
    ),
    "policy_wrong_shape": (
        BASE + "policies:\n  default: {winner: hubspot}\n",
        "15: policies.default: expected conflict, newest, never, {source_of_truth: INSTANCE}"
        " or {priority: [INSTANCE, ...]}",
    ),
    "push_target_unknown": (
        BASE + "push:\n  targets: [hubspot, pipedrive]\n",
        "15: push.targets.1: unknown instance 'pipedrive' (expected one of hubspot, salesforce)",
    ),
    "external_ids_unknown_instance": (
        BASE.replace("    stage_map:", "    external_ids: {pipedrive: x}\n    stage_map:"),
        "7: systems.hubspot.external_ids.pipedrive: unknown instance 'pipedrive'"
        " (expected one of hubspot, salesforce)",
    ),
    "cron_invalid": (
        BASE + "schedule:\n  - {name: a, cron: '0 25 * * *', job: report}\n",
        "15: schedule.0.cron: invalid cron expression '0 25 * * *': Error validating expression"
        " '25': the last value (25) is higher than the maximum value (23) (expected 5 fields:"
        " minute hour day month weekday, e.g. '0 2 * * *')",
    ),
    "cron_wrong_field_count": (
        BASE + "schedule:\n  - name: a\n    cron: '0 2 * *'\n    job: report\n",
        "16: schedule.0.cron: invalid cron expression '0 2 * *': Wrong number of fields; got 4,"
        " expected 5 (expected 5 fields: minute hour day month weekday, e.g. '0 2 * * *')",
    ),
    "timezone_invalid": (
        BASE + "schedule:\n  - {name: a, cron: '0 2 * * *', job: report, timezone: Mars/Base}\n",
        "15: schedule.0.timezone: unknown time zone 'Mars/Base'"
        " (expected an IANA name such as UTC, Europe/Berlin)",
    ),
    "report_timezone_invalid": (
        BASE + "report:\n  stale_days: 30\n  timezone: Europe/Berlinn\n",
        "16: report.timezone: unknown time zone 'Europe/Berlinn'"
        " (expected an IANA name such as UTC, Europe/Berlin)",
    ),
    "report_timezone_a_region": (
        BASE + "report:\n  timezone: America\n",
        "15: report.timezone: unknown time zone 'America'"
        " (expected an IANA name such as UTC, Europe/Berlin)",
    ),
    "hubspot_timezone_invalid": (
        BASE.replace("kind: hubspot\n", "kind: hubspot\n    timezone: America/LosAngeles\n"),
        "5: systems.hubspot.timezone: unknown time zone 'America/LosAngeles'"
        " (expected an IANA name such as UTC, Europe/Berlin)",
    ),
    # A YAML true is no organization (pydantic reads it as 1: every copy linked to org 1).
    "pipedrive_create_org_id_a_boolean": (
        BASE + "  pipedrive:\n    kind: pipedrive\n    credentials:\n"
        "      api_token: ${HUBSPOT_TOKEN}\n    create_org_id: true\n",
        "18: systems.pipedrive.create_org_id: must be a Pipedrive organization id, a whole "
        "number (got True)",
    ),
    # The one key that keeps the old filing (every copy under create_org_id): two words only.
    "pipedrive_create_org_by_unknown": (
        BASE + "  pipedrive:\n    kind: pipedrive\n    credentials:\n"
        "      api_token: ${HUBSPOT_TOKEN}\n    create_org_by: accounts\n",
        "18: systems.pipedrive.create_org_by: invalid value 'accounts' (expected one of "
        "account, create_org_id) (did you mean 'account'?)",
    ),
    "salesforce_timezone_unknown_key": (
        BASE + "    timezone: Europe/Berlin\n",
        "14: systems.salesforce.timezone: unknown key 'timezone'",
    ),
    "duration_invalid": (
        BASE + "push:\n  plan_max_age: 24x\n",
        "15: push.plan_max_age: invalid duration '24x' (expected e.g. 90s, 15m, 24h or 7d)",
    ),
    "duration_overflowing": (
        BASE + "push:\n  plan_max_age: 86400000000000\n",
        "15: push.plan_max_age: duration '86400000000000' is too long (at most 999999999 days)",
    ),
    "duration_overflowing_in_days": (
        BASE + "push:\n  plan_max_age: 9999999999d\n",
        "15: push.plan_max_age: duration '9999999999d' is too long (at most 999999999 days)",
    ),
    "duplicate_job_name": (
        BASE + "schedule:\n  - {name: a, cron: '0 2 * * *', job: report}\n"
        "  - {name: a, cron: '0 3 * * *', job: report}\n",
        "16: schedule.1.name: duplicate job name 'a'",
    ),
    "job_name_reserved": (
        BASE + "schedule:\n  - {name: reconcile, cron: '0 2 * * *', job: reconcile}\n",
        "15: schedule.0.name: 'reconcile' is a name crmsync's own commands run under; name the"
        " entry after what it is for (e.g. nightly-reconcile)",
    ),
    "currency_unknown": (
        BASE.replace("    stage_map:", "    currency: usd\n    stage_map:"),
        "7: systems.hubspot.currency: unknown currency 'usd'"
        " (expected an ISO 4217 code such as USD, EUR)",
    ),
    "rate_currency_unknown": (
        BASE + "report:\n  rates: {EUX: 1.1}\n",
        "15: report.rates.EUX: unknown currency 'EUX' (expected an ISO 4217 code such as USD, EUR)",
    ),
    "salesforce_login_domain_naming_another_host": (  # the password went to that host
        BASE.replace(
            "session_id: ${SF_SESSION}",
            "username: me\n      password: ${SF_SESSION}\n      security_token: ${SF_SESSION}"
            "\n      domain: 'attacker.example:443/x?'",
        ),
        "16: systems.salesforce.credentials.domain: must be login, test or a My Domain prefix"
        " such as mycompany.my (letters, digits, '-' and '.'): it names the host the login"
        " goes to",
    ),
    "salesforce_link_field_not_a_field_name": (  # it went into SOQL as it was written
        BASE + "    link_field: Id FROM Opportunity WHERE Name != null OR Id\n",
        "14: systems.salesforce.link_field: 'Id FROM Opportunity WHERE Name != null OR Id' is"
        " not a Salesforce field API name (letters, digits and _, such as Crmsync_Id__c)",
    ),
    "salesforce_external_id_not_a_field_name": (
        BASE + "    external_ids: {hubspot: 'HubSpot_Id__c) OR (Id'}\n",
        "14: systems.salesforce.external_ids.hubspot: 'HubSpot_Id__c) OR (Id' is not a"
        " Salesforce field API name (letters, digits and _, such as Crmsync_Id__c)",
    ),
    "rate_limit_beyond_a_day": (  # was accepted, then a pull failed: 'unexpected OverflowError'
        BASE.replace(
            "    stage_map:", "    rate_limit: {requests: 1, per_seconds: 1.0e+300}\n    stage_map:"
        ),
        "7: systems.hubspot.rate_limit.per_seconds: must be less than or equal to 86400"
        " (got 1e+300)",
    ),
    "rate_limit_infinite": (
        BASE.replace(
            "    stage_map:", "    rate_limit: {requests: 1, per_seconds: .inf}\n    stage_map:"
        ),
        "7: systems.hubspot.rate_limit.per_seconds: must be a finite number (got inf)",
    ),
    "misfire_grace_beyond_any_date": (  # was accepted; `schedule` failed: OverflowError
        BASE + "schedule:\n  - {name: n, cron: '0 2 * * *', job: report,"
        " misfire_grace_seconds: 99999999999999999999}\n",
        "15: schedule.0.misfire_grace_seconds: must be less than or equal to 1000000000"
        " (got 99999999999999999999)",
    ),
    "keep_on_an_out_naming_one_file": (  # written over each firing: nothing to prune
        BASE + "schedule:\n  - {name: h, cron: '0 6 * * 1', job: report, out: h.html, keep: 4}\n",
        "15: schedule.0.keep: applies to an out: directory, and out names one file, which each"
        " firing writes over (give out a directory, such as reports/, or leave keep out)",
    ),
    "keep_on_a_reconcile_entry_without_out": (  # it writes no file
        BASE + "schedule:\n  - name: p\n    cron: '0 2 * * *'\n    job: reconcile-dry-run\n"
        "    keep: 4\n",
        "18: schedule.0.keep: applies to an out: directory, and this entry has no out: (add one,"
        " such as plans/, or leave keep out)",
    ),
    "keep_over_another_entrys_files": (  # both write `a_b-<time>.html` into reports/
        BASE + "schedule:\n  - {name: a/b, cron: '0 6 * * 1', job: report, keep: 3}\n"
        "  - {name: a_b, cron: '0 7 * * 1', job: report}\n",
        "15: schedule.0.keep: would delete the files of entry 'a_b' too: both write files named"
        " a_b-... into the same out: directory (rename one of them)",
    ),
    "keep_over_the_default_reports_named_explicitly": (  # reports/ is a report's default
        BASE + "schedule:\n  - {name: a/b, cron: '0 6 * * 1', job: report, keep: 3}\n"
        "  - {name: a_b, cron: '0 7 * * 1', job: report, out: reports/}\n",
        "15: schedule.0.keep: would delete the files of entry 'a_b' too: both write files named"
        " a_b-... into the same out: directory (rename one of them)",
    ),
    "keep_zero": (
        BASE + "schedule:\n  - {name: p, cron: '0 2 * * *', job: reconcile, out: plans/,"
        " keep: 0}\n",
        "15: schedule.0.keep: must be greater than or equal to 1 (got 0)",
    ),
    "keep_negative": (
        BASE + "schedule:\n  - {name: p, cron: '0 2 * * *', job: reconcile, out: plans/,"
        " keep: -2}\n",
        "15: schedule.0.keep: must be greater than or equal to 1 (got -2)",
    ),
    "keep_fraction": (
        BASE + "schedule:\n  - {name: p, cron: '0 2 * * *', job: reconcile, out: plans/,"
        " keep: 2.5}\n",
        "15: schedule.0.keep: must be a valid integer, got a number with a fractional part"
        " (got 2.5)",
    ),
    "keep_true": (
        BASE + "schedule:\n  - {name: p, cron: '0 2 * * *', job: reconcile, out: plans/,"
        " keep: true}\n",
        "15: schedule.0.keep: must be a number, not true or false (got True)",
    ),
    "keep_text": (
        BASE + "schedule:\n  - {name: p, cron: '0 2 * * *', job: reconcile, out: plans/,"
        " keep: three}\n",
        "15: schedule.0.keep: must be a valid integer, unable to parse string as an integer"
        " (got 'three')",
    ),
    "rate_beyond_any_currency": (  # was accepted, then `report` failed: InvalidOperation
        BASE + "report:\n  currency: USD\n  rates: {EUR: 1e400}\n",
        "16: report.rates.EUR: must be less than or equal to 1E+12 (got '1e400')",
    ),
    "base_url_invalid": (
        BASE.replace("    stage_map:", "    base_url: ftp:/x\n    stage_map:"),
        "7: systems.hubspot.base_url: invalid URL (expected https://HOST[:PORT],"
        " e.g. https://127.0.0.1:8443)",
    ),
    "store_unsupported": (
        "store: mysql://u:pw@h/db\n" + BASE,
        "1: store: unsupported store URL (expected sqlite:///FILE or"
        " postgresql+psycopg://USER@HOST/DB)",
    ),
    "store_port_not_a_number": (
        "store: postgresql+psycopg://u@h:54x2/db\n" + BASE,
        "1: store: not a valid store URL (expected sqlite:///FILE or"
        " postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB; write an '@' in the password as %40,"
        " or take the password from ${VAR})",
    ),
    "store_password_with_an_unescaped_at": (
        "store: postgresql+psycopg://u:p@ss-tail@h/db\n" + BASE,
        "1: store: not a valid store URL (expected sqlite:///FILE or"
        " postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB; write an '@' in the password as %40,"
        " or take the password from ${VAR})",
    ),
    "missing_environment_variable": (
        BASE.replace("HUBSPOT_TOKEN", "HUBSPOT_TOKEN_X"),
        "6: systems.hubspot.credentials.access_token: environment variable HUBSPOT_TOKEN_X"
        " is not set",
    ),
    "yaml_syntax_error": (
        BASE + "push: [\n",
        "15: invalid YAML: expected the node content, but found '<stream end>'",
    ),
    "yaml_bad_indentation": (
        BASE + "push:\n  max_changes: 1\n bad: 2\n",
        "16: invalid YAML: expected <block end>, but found '<block mapping start>'",
    ),
    "duplicate_key": (BASE + "push: {}\npush: {}\n", "15: push: duplicate key 'push'"),
    "owner_alias_not_an_email": (
        BASE + "owners:\n  aliases:\n    ana@acme-eu.com: Ana Lima\n",
        "16: owners.aliases.ana@acme-eu.com: 'Ana Lima' is not an email address",
    ),
    "owner_alias_key_not_an_email": (
        BASE + "owners:\n  aliases:\n    ana: ana@acme.com\n",
        "16: owners.aliases.ana: 'ana' is not an email address",
    ),
    "owner_alias_of_an_alias": (
        BASE + "owners:\n  aliases:\n    ana@acme-eu.com: ana@acme.com\n"
        "    ana@acme-uk.com: Ana@Acme-EU.com\n",
        "17: owners.aliases.ana@acme-uk.com: 'Ana@Acme-EU.com' is itself an alias (of"
        " 'ana@acme.com'): name the email it stands for, not another alias",
    ),
    "owner_aliases_in_a_cycle": (
        BASE + "owners:\n  aliases:\n    a@acme.com: b@acme.com\n    b@acme.com: a@acme.com\n",
        "16: owners.aliases.a@acme.com: 'b@acme.com' is itself an alias (of 'a@acme.com'): name"
        " the email it stands for, not another alias",
    ),
    "owner_alias_of_itself": (
        BASE + "owners:\n  aliases:\n    Ana@acme.com: ana@ACME.com\n",
        "16: owners.aliases.Ana@acme.com: 'Ana@acme.com' is an alias of itself (leave it out)",
    ),
    "owner_alias_listed_twice_in_other_case": (
        BASE + "owners:\n  aliases:\n    ana@acme-eu.com: ana@acme.com\n"
        "    ANA@acme-eu.com: ana@acme.com\n",
        "17: owners.aliases.ANA@acme-eu.com: 'ANA@acme-eu.com' is listed twice (emails compare"
        " lower-cased)",
    ),
    "top_level_not_a_mapping": (
        "- version: 1\n",
        "1: the top level must be a mapping of keys such as version, systems, policies",
    ),
    "unsafe_yaml_tag": (
        BASE + "push: !!python/object/apply:os.system ['true']\n",
        "14: push: invalid value: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
}


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_yields_its_exact_one_line_message(in_tmp: Path, case: str) -> None:
    text, expected = CASES[case]
    (in_tmp / "crmsync.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == f"crmsync.yaml:{expected}"
    assert caught.value.exit_code == 2


def test_base_config_of_the_error_table_is_itself_valid(in_tmp: Path) -> None:
    (in_tmp / "crmsync.yaml").write_text(BASE + FUNNEL + A + WON + LOST)
    config = load_config("crmsync.yaml", env=ENV)
    assert config.funnels["f"].keys == ("a", "w", "l")


def test_schedule_entry_cannot_take_the_name_links_runs_are_recorded_under(in_tmp: Path) -> None:
    # `crmsync links` records its runs as job 'links': an entry of that name would take a
    # person's links run after a missed firing for that firing served, and skip it.
    entry = "schedule:\n  - {name: links, cron: '0 2 * * *', job: reconcile}\n"
    (in_tmp / "crmsync.yaml").write_text(BASE + entry)
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == (
        "crmsync.yaml:15: schedule.0.name: 'links' is a name crmsync's own commands run under;"
        " name the entry after what it is for (e.g. nightly-links)"
    )


def test_missing_file_names_it_and_says_how_to_fix(in_tmp: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == (
        "crmsync.yaml: file not found (copy crmsync.example.yaml or pass --config FILE)"
    )


def test_directory_instead_of_file_is_a_config_error(in_tmp: Path) -> None:
    (in_tmp / "conf.d").mkdir()
    with pytest.raises(ConfigError, match=r"^conf\.d: is a directory, not a YAML file$"):
        load_config("conf.d", env=ENV)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


@contextmanager
def _file_permissions_enforced() -> Iterator[None]:
    """File modes hold for this thread even as root (CI containers run tests as root): its
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are off for the block, and back on after."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread

    def call(name: str, data: ctypes.Array[_CapData]) -> None:
        if getattr(libc, name)(ctypes.byref(header), data) != 0:
            raise OSError(ctypes.get_errno(), f"{name} failed")

    held = (_CapData * 2)()
    call("capget", held)
    dropped = (_CapData * 2)(*held)
    dropped[0].effective &= ~(1 << 1 | 1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    call("capset", dropped)
    try:
        yield
    finally:
        call("capset", held)


def test_unreadable_file_is_a_config_error(in_tmp: Path) -> None:
    path = in_tmp / "crmsync.yaml"
    path.write_text(BASE)
    path.chmod(0)
    with (
        _file_permissions_enforced(),
        pytest.raises(ConfigError, match=r"^crmsync\.yaml: cannot read: Permission denied$"),
    ):
        load_config("crmsync.yaml", env=ENV)


def test_an_endless_file_is_refused_without_reading_it_all(in_tmp: Path) -> None:
    # /dev/zero used to be read until memory ran out ("unexpected MemoryError")
    with pytest.raises(ConfigError) as caught:
        load_config("/dev/zero", env=ENV)
    assert str(caught.value) == "/dev/zero: larger than 16 MB: not a crmsync config"


def test_aliases_of_aliases_are_refused_before_they_expand(in_tmp: Path) -> None:
    """Nine levels of nine aliases: 9**9 values from ten lines (it used to run until memory
    ran out)."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]\n"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)]
    (in_tmp / "crmsync.yaml").write_text(BASE + "".join(levels))
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == (
        "crmsync.yaml: the document expands to more than 200000 values (aliases of aliases?)"
    )
    assert time.monotonic() - started < 20


def test_non_utf8_file_names_the_line(in_tmp: Path) -> None:
    (in_tmp / "crmsync.yaml").write_bytes(BASE.encode() + b"push: {x: \xff}\n")
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == "crmsync.yaml:14: not UTF-8 text"


def test_empty_file_is_a_config_error(in_tmp: Path) -> None:
    (in_tmp / "crmsync.yaml").write_text("# nothing yet\n")
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert (
        str(caught.value) == "crmsync.yaml: the file is empty (expected a mapping with version: 1)"
    )


@pytest.mark.parametrize(
    ("directory", "what"), [(False, "file not found"), (True, "a directory, not a PEM file")]
)
def test_a_missing_ca_file_or_a_directory_is_reported_at_its_key(
    in_tmp: Path, directory: bool, what: str
) -> None:
    if directory:
        (in_tmp / "sandbox-ca.pem").mkdir()
    text = BASE.replace("    stage_map:", "    ca_file: ./sandbox-ca.pem\n    stage_map:")
    (in_tmp / "crmsync.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    assert str(caught.value) == (
        f"crmsync.yaml:7: systems.hubspot.ca_file: {what}: {in_tmp}/sandbox-ca.pem"
    )


def test_all_problems_are_kept_in_line_order_and_the_first_is_the_message(in_tmp: Path) -> None:
    text = BASE.replace("closedwon: won", "closedwon: wonn") + "push:\n  max_changes: -1\n"
    (in_tmp / "crmsync.yaml").write_text(text.replace("kind: hubspot", "kind: hubspot"))
    with pytest.raises(ConfigError) as caught:
        load_config("crmsync.yaml", env=ENV)
    # shape errors are reported before reference errors are even looked for
    assert caught.value.lines == (
        "crmsync.yaml:15: push.max_changes: must be greater than or equal to 0 (got -1)",
    )
    assert all("\n" not in line for line in caught.value.lines)
