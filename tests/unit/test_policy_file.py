"""The merchant's policy file: validated up front, resolved per category and carrier,
pinned into each case."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from activities.policy_file import PolicyFileError, load_policy_file
from infra.settings import DEFAULT_POLICY_FILE


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_shipped_policy_file_is_valid_and_matches_the_rules() -> None:  # R1 R6 R10 R12 R15 R17
    policy = load_policy_file(DEFAULT_POLICY_FILE).resolve("general")
    assert policy.return_window == timedelta(days=7)
    assert policy.review_deadline == timedelta(hours=48)
    assert policy.ship_back_reminders == (timedelta(days=3), timedelta(days=6))
    assert policy.carrier_claim_deadline == timedelta(days=60)
    assert policy.agent_compensation_limit_minor == 5_000
    assert policy.max_return_postage_minor == 2_500  # R6, our choice


def test_window_differs_per_category(tmp_path: Path) -> None:  # R1 (policy, per category)
    policy = load_policy_file(write(tmp_path, """
version = "t1"
[defaults]
return_window = "P7D"
[categories.electronics]
return_window = "P15D"
"""))  # fmt: skip
    assert policy.resolve("electronics").return_window == timedelta(days=15)
    assert policy.resolve("shoes").return_window == timedelta(days=7)
    assert policy.resolve("electronics").version == "t1/electronics"


def test_claim_deadline_differs_per_carrier(tmp_path: Path) -> None:  # R15 (per carrier)
    policy = load_policy_file(write(tmp_path, """
version = "t1"
[carriers.SF]
carrier_claim_deadline = "P30D"
"""))  # fmt: skip
    assert policy.resolve("general", "SF").carrier_claim_deadline == timedelta(days=30)
    assert policy.resolve("general", "DHL").carrier_claim_deadline == timedelta(days=60)
    assert policy.resolve("general", "SF").version == "t1/general/SF"


def test_only_carrier_numbers_may_differ_by_carrier(tmp_path: Path) -> None:  # R15
    with pytest.raises(PolicyFileError, match=r"carriers\.SF: return_window cannot differ"):
        load_policy_file(write(tmp_path, """
version = "t1"
[carriers.SF]
return_window = "P30D"
"""))  # fmt: skip


def test_a_bad_value_names_its_section_and_field(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"categories\.shoes: return_window"):
        load_policy_file(write(tmp_path, """
version = "t1"
[categories.shoes]
return_window = "a week"
"""))  # fmt: skip


def test_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="retrun_window"):
        load_policy_file(write(tmp_path, """
version = "t1"
[defaults]
retrun_window = "P7D"
"""))  # fmt: skip


def test_contact_hours_must_be_a_real_interval(tmp_path: Path) -> None:  # R16
    with pytest.raises(PolicyFileError, match="call_hours"):
        load_policy_file(write(tmp_path, """
version = "t1"
[defaults]
call_hours = ["18:00", "10:00"]
"""))  # fmt: skip


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"policy\.toml"):
        load_policy_file(write(tmp_path, "version = "))
