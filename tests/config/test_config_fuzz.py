"""Whatever the file holds, loading it ends in a Config or one ConfigError line: no traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
ENV = {
    "SF_SESSION_ID": "dummy-session",
    "SF_EU_CONSUMER_KEY": "dummy-consumer-key",
    "SF_EU_CONSUMER_SECRET": "dummy-consumer-secret",
    "HUBSPOT_TOKEN": "dummy-hubspot",
    "PIPEDRIVE_TOKEN": "dummy-pipedrive",
}
EXAMPLE = yaml.safe_load((REPO / "crmsync.example.yaml").read_text())
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["${NOPE}", "${HUBSPOT_TOKEN}", "won", "salesforce", "24h", "0 2 * * *"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


PATHS = [p for p in _paths(EXAMPLE) if p]


def _load_outcome(path: Path) -> Config | ConfigError:
    try:
        return load_config(path, env=ENV)
    except ConfigError as exc:
        return exc


def _assert_one_line(outcome: Config | ConfigError) -> None:
    if isinstance(outcome, ConfigError):
        assert "\n" not in str(outcome)
        assert str(outcome).startswith(str(outcome.filename))
        for secret in ENV.values():
            assert secret not in str(outcome)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "crmsync.yaml"


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_is_a_config_error_not_a_crash(target: Path, text: str) -> None:
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    _assert_one_line(_load_outcome(target))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_are_a_config_error_not_a_crash(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    _assert_one_line(_load_outcome(target))


# a literal value under credentials is warned about, as it should be: not this test's subject
@pytest.mark.filterwarnings("ignore::config.errors.LiteralSecretWarning")
@pytest.mark.filterwarnings("ignore::config.errors.StaleStageWriteWarning")  # a stage_map value
@FUZZ
@given(index=st.integers(min_value=0, max_value=len(PATHS) - 1), value=values)
def test_any_value_anywhere_in_the_example_is_handled(target: Path, index: int, value: Any) -> None:
    data = copy.deepcopy(EXAMPLE)
    *parents, last = PATHS[index]
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    _assert_one_line(_load_outcome(target))


@FUZZ
@given(key=st.text(min_size=1, max_size=15), value=values, index=st.integers(0, len(PATHS) - 1))
def test_any_extra_key_anywhere_is_handled(target: Path, key: str, value: Any, index: int) -> None:
    data = copy.deepcopy(EXAMPLE)
    node: Any = data
    for part in PATHS[index]:
        if isinstance(node[part], (dict, list)):
            node = node[part]
    if isinstance(node, dict):
        node[key] = value
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    _assert_one_line(_load_outcome(target))
