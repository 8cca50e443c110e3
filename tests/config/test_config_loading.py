"""What a valid config gives the engine: secrets from the environment, resolved paths, funnels,
policies, immutability, a secret-free fingerprint, and several instances of one kind."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from config import (
    ConfigError,
    LiteralSecretWarning,
    PolicyRule,
    StaleStageWriteWarning,
    load_config,
    redact_url,
)
from mapping.versions import MAPPER_VERSIONS
from sync.connect import connector_settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ENV = {
    "SF_SESSION_ID": "dummy-session",
    "SF_EU_CONSUMER_KEY": "dummy-consumer-key",
    "SF_EU_CONSUMER_SECRET": "dummy-consumer-secret",
    "HUBSPOT_TOKEN": "dummy-hubspot",
    "PIPEDRIVE_TOKEN": "dummy-pipedrive",
}
SECRET = "s3cr3t-VALUE-never-shown"

TWO_ORGS = """\
version: 1
systems:
  sf_us:
    kind: salesforce
    credentials: {session_id: "${SF_US_SESSION}"}
    stage_map: &sf_stages
      default:
        Prospecting: lead
        Closed Won: won
        Closed Lost: lost
  sf_eu:
    kind: salesforce
    base_url: https://eu.example.test:8443/
    credentials:
      username: ops@acme.eu
      password: ${SF_EU_PASSWORD}
      security_token: tok-${SF_EU_SUFFIX}
    currency: EUR
    pipeline_funnels: {default: enterprise}
    stage_map:
      default: {Prospecting: discovery, Closed Won: won, Closed Lost: lost}
    external_ids: {sf_us: US_Opportunity_Id__c}
funnels:
  enterprise:
    stages:
      - {key: discovery, phase: interest, probability: 0.2}
      - {key: won, phase: action, probability: 1, closed: true, won: true}
      - {key: lost, phase: action, probability: 0, closed: true}
policies:
  fields:
    amount: {source_of_truth: sf_us}
push:
  targets: [sf_eu]
  plan_max_age: 90m
"""
TWO_ORGS_ENV = {"SF_US_SESSION": SECRET, "SF_EU_PASSWORD": "pw-123456", "SF_EU_SUFFIX": "abcdef"}


def write(tmp_path: Path, text: str, name: str = "crmsync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_config_validates_with_dummy_environment() -> None:
    config = load_config(REPO / "crmsync.example.yaml", env=EXAMPLE_ENV)
    assert set(config.systems) == {"salesforce", "salesforce_eu", "hubspot", "pipedrive"}
    assert config.funnel_for("hubspot", "enterprise-pipeline").name == "enterprise"
    assert config.policy_for("stage").rule is PolicyRule.SOURCE_OF_TRUTH
    assert config.push.plan_max_age == timedelta(hours=24)
    assert config.report.timezone == "Europe/Berlin"


def test_example_config_names_the_first_missing_variable() -> None:
    with pytest.raises(ConfigError, match=r"environment variable SF_SESSION_ID is not set$"):
        load_config(REPO / "crmsync.example.yaml", env={})


def test_two_salesforce_instances_each_keep_their_own_settings(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_ORGS), env=TWO_ORGS_ENV)
    us, eu = config.systems["sf_us"], config.systems["sf_eu"]
    assert (us.kind, eu.kind) == ("salesforce", "salesforce")
    assert (us.auth_mode, eu.auth_mode) == ("session", "password")
    assert us.secret("session_id") == SECRET
    assert eu.secret("security_token") == "tok-abcdef"  # embedded ${VAR}
    assert eu.base_url == "https://eu.example.test:8443"
    assert config.funnel_for("sf_us", "default").name == "default"
    assert config.funnel_for("sf_eu", "default").name == "enterprise"
    assert config.stage_key("sf_eu", "default", "Prospecting") == "discovery"
    assert config.stage_key("sf_us", "default", "Nope") is None
    assert config.policy_for("amount").systems == ("sf_us",)
    assert config.policy_for("name").rule is PolicyRule.CONFLICT
    assert config.push_targets == ("sf_eu",)
    assert config.push.plan_max_age == timedelta(minutes=90)


def test_yaml_anchor_shares_a_stage_map_between_instances(tmp_path: Path) -> None:
    own_map = "default: {Prospecting: discovery, Closed Won: won, Closed Lost: lost}"
    text = TWO_ORGS.replace(f"    stage_map:\n      {own_map}", "    stage_map: *sf_stages")
    text = text.replace("pipeline_funnels: {default: enterprise}", "pipeline_funnels: {}")
    config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.systems["sf_eu"].stage_map == config.systems["sf_us"].stage_map


def test_numeric_pipedrive_ids_stay_strings(tmp_path: Path) -> None:
    text = """\
version: 1
systems:
  pipedrive:
    kind: pipedrive
    credentials: {api_token: "${PD}"}
    stage_map:
      1: {1: lead, 05: won, 6: lost}
"""
    config = load_config(write(tmp_path, text), env={"PD": "x" * 10})
    assert dict(config.systems["pipedrive"].stage_map["1"]) == {
        "1": "lead",
        "05": "won",
        "6": "lost",
    }


def test_dollar_dollar_writes_a_literal_dollar_brace(tmp_path: Path) -> None:
    text = TWO_ORGS.replace("ops@acme.eu", "ops$${x}@acme.eu")
    config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.systems["sf_eu"].credentials.username == "ops${x}@acme.eu"  # type: ignore[union-attr]


def test_empty_environment_variable_for_a_whole_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, TWO_ORGS), env={**TWO_ORGS_ENV, "SF_US_SESSION": ""})
    assert str(caught.value).endswith(
        ":5: systems.sf_us.credentials.session_id: environment variable SF_US_SESSION is empty"
    )


def test_literal_secret_is_accepted_with_a_warning_naming_the_key_not_the_value(
    tmp_path: Path,
) -> None:
    text = TWO_ORGS.replace('"${SF_US_SESSION}"', SECRET)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    messages = [str(w.message) for w in caught if issubclass(w.category, LiteralSecretWarning)]
    assert messages == [
        f"{tmp_path}/crmsync.yaml:5: systems.sf_us.credentials.session_id: secret written in the"
        " config file; put it in an environment variable and write ${VAR} instead"
    ]
    assert SECRET not in messages[0]
    assert config.systems["sf_us"].secret("session_id") == SECRET


@pytest.mark.parametrize(
    ("store", "warned"),
    [
        ("postgresql+psycopg://crm:hunter2-secret@db.example:5432/crm", True),
        ("postgresql+psycopg://crm:${PGPASSWORD}@db.example:5432/crm", False),
        ("postgresql+psycopg://crm@db.example:5432/crm", False),
        ("sqlite:///state/a@b.db", False),
    ],
)
def test_a_literal_password_in_the_store_url_is_warned_about_naming_the_key_not_the_value(
    tmp_path: Path, store: str, warned: bool
) -> None:
    text = f"store: {store}\n" + TWO_ORGS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPASSWORD": "from-env-42"})
    messages = [str(w.message) for w in caught if issubclass(w.category, LiteralSecretWarning)]
    expected = f"{tmp_path}/crmsync.yaml:1: store: secret written in the config file; put it in"
    assert [m.startswith(expected) for m in messages] == ([True] if warned else [])
    assert not any("hunter2" in m for m in messages)


def test_secrets_never_appear_in_repr_str_or_dumps(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_ORGS), env=TWO_ORGS_ENV)
    system = config.systems["sf_us"]
    texts = [
        repr(config),
        str(config),
        repr(config.document),
        str(config.document),
        repr(system),
        repr(system.credentials),
        config.document.model_dump_json(),
        str(config.document.model_dump()),
    ]
    for text in texts:
        assert SECRET not in text
        assert "pw-123456" not in text
    assert "**********" in repr(system)


def test_secret_substituted_elsewhere_is_scrubbed_from_errors(tmp_path: Path) -> None:
    text = TWO_ORGS.replace("currency: EUR", "currency: ${SF_US_SESSION}")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert SECRET not in str(caught.value)
    assert str(caught.value).endswith(
        "systems.sf_eu.currency: unknown currency '**********' (expected an ISO 4217 code such"
        " as USD, EUR)"
    )


def test_literal_credential_is_never_echoed_in_a_type_error(tmp_path: Path) -> None:
    text = TWO_ORGS.replace('{session_id: "${SF_US_SESSION}"}', "{session_id: [" + SECRET + "]}")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert str(caught.value).endswith(
        "systems.sf_us.credentials.session_id: must be a valid string"
    )


@pytest.mark.parametrize("written", ["!{}", "!!{}", "*{}", "&{} x: y"])
def test_a_yaml_error_on_a_credentials_line_does_not_quote_the_password(
    tmp_path: Path, written: str
) -> None:
    """An unquoted password starting with a YAML indicator: PyYAML's message quotes it."""
    password = "Summer2024-pw"
    text = TWO_ORGS.replace("password: ${SF_EU_PASSWORD}", "password: " + written.format(password))
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert ":16: " in str(caught.value)  # the line of the password
    assert password not in str(caught.value)


def test_fingerprint_ignores_secrets_but_not_policies(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_ORGS)
    first = load_config(path, env=TWO_ORGS_ENV).fingerprint()
    rotated = load_config(path, env={**TWO_ORGS_ENV, "SF_US_SESSION": "another-session"})
    assert rotated.fingerprint() == first
    assert len(first) == 64
    write(tmp_path, TWO_ORGS.replace("source_of_truth: sf_us", "source_of_truth: sf_eu"))
    assert load_config(path, env=TWO_ORGS_ENV).fingerprint() != first


def test_the_apply_guards_leave_the_fingerprint_as_it_was_without_them(tmp_path: Path) -> None:
    """push.max_changes and the other guards are checked at apply against the config then: a
    plan reviewed before the limit was raised still applies, and one made before they were set
    at all too (they hash at their defaults)."""
    path = write(tmp_path, TWO_ORGS)
    first = load_config(path, env=TWO_ORGS_ENV).fingerprint()
    guards = (
        "  plan_max_age: 2d\n  max_changes: 5000\n  max_changes_per_system: 900\n"
        "  confirm_above: 10\nlimits: {max_conflicts: 3, max_unmatched: 0}\n"
    )
    write(tmp_path, TWO_ORGS.replace("  plan_max_age: 90m\n", guards))
    assert load_config(path, env=TWO_ORGS_ENV).fingerprint() == first
    write(tmp_path, TWO_ORGS + "  create_missing: true\n")
    assert load_config(path, env=TWO_ORGS_ENV).fingerprint() != first


def test_store_defaults_to_sqlite_beside_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_ORGS), env=TWO_ORGS_ENV)
    assert config.store_url == f"sqlite:///{tmp_path}/crmsync.db"
    assert config.path == tmp_path / "crmsync.yaml"


@pytest.mark.parametrize(
    ("store", "resolved"),
    [
        ("sqlite:///state/sync.db", "sqlite:///{dir}/state/sync.db"),
        ("sqlite:////var/lib/crmsync.db", "sqlite:////var/lib/crmsync.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://crm@db/crm", "postgresql+psycopg://crm@db/crm"),
    ],
)
def test_store_url_resolution(tmp_path: Path, store: str, resolved: str) -> None:
    text = f"allow_absolute_paths: true\nstore: '{store}'\n" + TWO_ORGS
    config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.store_url == resolved.format(dir=tmp_path)


def test_store_password_from_environment_is_redacted_for_display(tmp_path: Path) -> None:
    text = "store: postgresql+psycopg://crm:${PGPW}@db/crm\n" + TWO_ORGS
    config = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPW": "pg-pass-99"})
    assert config.store_url == "postgresql+psycopg://crm:pg-pass-99@db/crm"
    assert config.store_url_redacted == "postgresql+psycopg://crm:***@db/crm"
    assert "pg-pass-99" not in repr(config) + repr(config.document)


def test_a_store_password_in_the_url_query_is_kept_whole_and_never_shown_in_part(
    tmp_path: Path,
) -> None:
    from sqlalchemy.engine import make_url

    password = "ab&cd=ef#gh +%41"
    text = "store: postgresql+psycopg://crm@db/crm?password=${PGPW}&sslmode=require\n" + TWO_ORGS
    config = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPW": password})
    url = make_url(config.store_url)
    assert (url.query["password"], url.query["sslmode"]) == (password, "require")
    assert (
        config.store_url_redacted == "postgresql+psycopg://crm@db/crm?password=***&sslmode=require"
    )


def test_a_proxy_password_in_a_base_url_leaves_no_trace_in_the_fingerprint(tmp_path: Path) -> None:
    text = TWO_ORGS.replace("https://eu.example.test", "https://svc:${PROXY_PW}@eu.example.test")
    first = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PROXY_PW": "proxy-pw-1"})
    second = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PROXY_PW": "proxy-pw-2"})
    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("failed: https://u:p@ss@crm.example/x", "failed: https://u:***@crm.example/x"),
        ("at https://u:pw@h and https://v:pw2@g/x", "at https://u:***@h and https://v:***@g/x"),
        ("GET https://h:8080/users/a@b.com", "GET https://h:8080/users/a@b.com"),  # no password
    ],
)
def test_a_url_password_holding_an_at_sign_is_masked_whole(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_store_password_in_the_url_query_is_redacted_for_display(tmp_path: Path) -> None:
    text = "store: postgresql+psycopg://crm@db/crm?password=${PGPW}&sslmode=require\n" + TWO_ORGS
    config = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPW": "pg-pass-99"})
    assert (
        config.store_url_redacted == "postgresql+psycopg://crm@db/crm?password=***&sslmode=require"
    )
    rotated = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPW": "other-pass"})
    assert rotated.fingerprint() == config.fingerprint()  # plans carry no hash of it


@pytest.mark.parametrize("password", ["hunter2@secret-part", "a:b/c#d?e%41f", "p@ss@word"])
def test_a_store_password_from_the_environment_is_kept_whole_and_never_shown_in_part(
    tmp_path: Path, password: str
) -> None:
    """An '@' in $PGPW used to end the password there: the rest was taken for the host and
    shown, in `check` and in every store error."""
    from sqlalchemy.engine import make_url

    text = "store: postgresql+psycopg://crm:${PGPW}@db:5432/crm\n" + TWO_ORGS
    config = load_config(write(tmp_path, text), env={**TWO_ORGS_ENV, "PGPW": password})
    url = make_url(config.store_url)
    assert (url.password, url.host, url.port, url.database) == (password, "db", 5432, "crm")
    assert config.store_url_redacted == "postgresql+psycopg://crm:***@db:5432/crm"


def test_a_whole_store_url_from_the_environment_is_taken_as_it_is(tmp_path: Path) -> None:
    url = "postgresql+psycopg://crm:p%40ss@db/crm"
    config = load_config(
        write(tmp_path, "store: ${DATABASE_URL}\n" + TWO_ORGS),
        env={**TWO_ORGS_ENV, "DATABASE_URL": url},
    )
    assert config.store_url == url


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("dummy")
    text = TWO_ORGS.replace("    currency: EUR", "    currency: EUR\n    ca_file: ca.pem") + (
        "schedule:\n  - {name: n, cron: '0 2 * * *', job: report, out: reports/}\n"
    )
    config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.systems["sf_eu"].ca_file == tmp_path / "ca.pem"
    assert config.schedule[0].out == tmp_path / "reports"
    assert config.schedule[0].timezone == "UTC"
    assert config.schedule[0].misfire_grace_seconds == 3600


def test_loaded_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TWO_ORGS), env=TWO_ORGS_ENV)
    with pytest.raises(AttributeError):
        config.store_url = "sqlite://"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.push.max_changes = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.systems["sf_us"].stage_map["default"]["x"] = "won"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.funnels["x"] = config.funnels["default"]  # type: ignore[index]


def test_defaults_when_sections_are_omitted(tmp_path: Path) -> None:
    text = "version: 1\nsystems:\n  hs: {kind: hubspot, credentials: {access_token: '${T}'}}\n"
    config = load_config(write(tmp_path, text), env={"T": "token-123"})
    assert list(config.funnels) == ["default"]
    assert config.matching.keys == ("name", "owner_email", "close_month")
    assert config.matching.fuzzy.enabled is False
    assert config.push.max_changes == 500
    assert config.push_targets == ("hs",)
    assert config.limits.max_conflicts is None
    assert config.report.stale_days == 30
    assert config.report.timezone == "UTC"  # the report's days begin as they always did
    assert config.systems["hs"].currency == "USD"


def test_connector_kind_registered_by_another_package_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real (tiny) installed distribution declaring a `crmsync.connectors` entry point
    dist = tmp_path / "site" / "crmsync_zoho-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crmsync-zoho\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[crmsync.connectors]\nzoho = crmsync_zoho:Zoho\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    text = "version: 1\nsystems:\n  z: {kind: zoho, credentials: {refresh_token: '${Z}'}}\n"
    config = load_config(write(tmp_path, text), env={"Z": "zoho-secret"})
    assert config.systems["z"].kind == "zoho"
    assert config.systems["z"].auth_mode == "custom"
    assert config.systems["z"].secret("refresh_token") == "zoho-secret"
    assert "zoho-secret" not in repr(config.systems["z"])


def test_literal_sandbox_token_on_a_loopback_url_is_not_warned_about(tmp_path: Path) -> None:
    text = TWO_ORGS.replace('"${SF_US_SESSION}"', SECRET).replace(
        "    stage_map: &sf_stages",
        "    base_url: https://127.0.0.1:8443\n    stage_map: &sf_stages",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.systems["sf_us"].secret("session_id") == SECRET


def test_sandbox_generated_config_validates(tmp_path: Path) -> None:
    import yaml

    from sync.sandbox_config import sandbox_config

    (tmp_path / "ca.pem").write_text("dummy")
    ready = {
        "salesforce": "https://127.0.0.1:8443",
        "hubspot": "http://127.0.0.1:8081",
        "pipedrive": "http://127.0.0.1:8082",
        "ca_file": str(tmp_path / "ca.pem"),
        "tokens": {"salesforce": "sf-tok", "hubspot": "hs-tok", "pipedrive": "pd-tok"},
    }
    path = write(tmp_path, yaml.safe_dump(sandbox_config(ready)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = load_config(path, env={})
    assert config.systems["pipedrive"].secret("api_token") == "pd-tok"


def test_cron_weekday_seven_is_sunday_as_in_crontab(tmp_path: Path) -> None:
    text = TWO_ORGS + (
        "schedule:\n  - {name: sundays, cron: '0 2 * * 7', job: report}\n"
        "  - {name: weekend, cron: '0 2 * * 6-7', job: report}\n"
    )
    config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert [entry.cron for entry in config.schedule] == ["0 2 * * 7", "0 2 * * 6-7"]


def test_a_pipedrive_create_org_id_reaches_the_connector(tmp_path: Path) -> None:
    text = """\
version: 1
systems:
  pipedrive:
    kind: pipedrive
    credentials: {api_token: "${PD}"}
    create_org_id: 7
"""
    config = load_config(write(tmp_path, text), env={"PD": "x" * 10})
    assert connector_settings(config, "pipedrive").options["create_org_id"] == 7


def test_a_new_mapper_version_changes_the_mapping_fingerprint_of_its_kind_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull reads everything again when its instance's mapping fingerprint changed: deals an
    older mapper stored (Pipedrive's archived ones without their flag) are mapped anew."""
    config = load_config(write(tmp_path, TWO_ORGS), env=TWO_ORGS_ENV)
    before = config.mapping_fingerprint("sf_us")
    monkeypatch.setitem(MAPPER_VERSIONS, "hubspot", 7)
    assert config.mapping_fingerprint("sf_us") == before
    monkeypatch.setitem(MAPPER_VERSIONS, "salesforce", MAPPER_VERSIONS["salesforce"] + 1)
    assert config.mapping_fingerprint("sf_us") != before


PIPEDRIVE_PROPOSALS = """\
version: 1
systems:
  pipedrive:
    kind: pipedrive
    credentials: {api_token: "${PD}"}
    stage_map:
      "1": {"3": proposal, "4": proposal}
"""


def test_a_stage_write_changes_what_is_written_but_not_how_records_are_read(
    tmp_path: Path,
) -> None:
    """A pull reads everything again when the mapping fingerprint changed; `stage_write` maps
    no record otherwise, so it leaves that alone. A plan made under another one is stale."""
    env = {"PD": "x" * 10}
    plain = load_config(write(tmp_path, PIPEDRIVE_PROPOSALS), env=env)
    chosen = PIPEDRIVE_PROPOSALS + '    stage_write:\n      "1": {proposal: "4"}\n'
    config = load_config(write(tmp_path, chosen, "chosen.yaml"), env=env)
    assert dict(config.systems["pipedrive"].stage_write["1"]) == {"proposal": "4"}
    assert config.stages_written("pipedrive") == {"1": {"proposal": "4"}}
    assert plain.stages_written("pipedrive") == {"1": {"proposal": "3"}}
    assert config.mapping_fingerprint("pipedrive") == plain.mapping_fingerprint("pipedrive")
    assert config.fingerprint() != plain.fingerprint()


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('{proposal: "5"}', "native stage '5' maps to 'negotiation' in"),
        ('{proposal: "9"}', "native stage '9' is not in"),
    ],
    ids=["mapped_to_another_funnel_stage", "not_in_the_stage_map"],
)
def test_a_stage_write_the_stage_map_does_not_back_is_ignored_with_a_warning_at_its_line(
    tmp_path: Path, entry: str, why: str
) -> None:
    """Written there, a deal would read back as another stage and be moved again every run.
    Not an error: an entry `crmsync init` wrote goes stale when a person remaps or drops the
    stage it names, and a nightly run refused for it would write nothing at all."""
    text = PIPEDRIVE_PROPOSALS.replace('"4": proposal}', '"4": proposal, "5": negotiation}')
    text += f'    stage_write:\n      "1": {entry}\n'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = load_config(write(tmp_path, text), env={"PD": "x" * 10})
    messages = [str(w.message) for w in caught if issubclass(w.category, StaleStageWriteWarning)]
    assert messages == [
        f"{tmp_path}/crmsync.yaml:9: systems.pipedrive.stage_write.1.proposal: {why}"
        " systems.pipedrive.stage_map.1 (expected one of 3, 4, mapped to 'proposal' there);"
        " ignored: deals moved to 'proposal' are written in the first one"
    ]
    assert config.stages_written("pipedrive")["1"]["proposal"] == "3"


def test_an_empty_security_token_for_a_trusted_ip_range_is_not_warned_about(
    tmp_path: Path,
) -> None:
    # The README's password login takes `security_token: ""` where the org trusts the caller's
    # IP range: no secret is written there, yet every command warned that one was.
    text = TWO_ORGS.replace("security_token: tok-${SF_EU_SUFFIX}", 'security_token: ""')
    with warnings.catch_warnings():
        warnings.simplefilter("error", LiteralSecretWarning)
        config = load_config(write(tmp_path, text), env=TWO_ORGS_ENV)
    assert config.systems["sf_eu"].secret("security_token") == ""
