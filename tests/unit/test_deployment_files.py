"""The Dockerfile and docker-compose.yml, checked as far as a machine without a Docker
engine can (issue 18, part 2): the compose file against the Compose specification's JSON
schema (the copy check-jsonschema vendors, from the compose-spec project), every command,
port and variable it names against the code, and the Dockerfile's stages parsed.

Not checked here, for want of an engine: that the image builds, and that the stack starts
and serves (docs/operations.md, "Docker Compose", says what was not run)."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from infra.settings import Settings
from starter import _parser as starter_parser
from tests.processes import ROOT

OURS = ("setup", "worker", "api")  # the services built from this repository's Dockerfile
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|apt-get|apk|pytest)\b")


def stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    loaded: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return loaded


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def setting_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", [alias] if isinstance(alias, str) else []))
    return names


def dockerfile() -> DockerfileParser:
    parsed = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parsed


def stages() -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = []
    for instruction in dockerfile().structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(dict(instruction))
    return found


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(stack()) == []


def test_the_schema_check_refuses_a_broken_compose_file() -> None:
    broken = stack()
    broken["services"]["worker"]["deploy"]["replicas"] = "two"
    broken["services"]["api"]["ports"] = [{"published": "8000", "bogus": 1}]
    assert len(schema_errors(broken)) >= 2


def test_the_stack_has_every_part_and_more_than_one_worker() -> None:
    services = stack()["services"]
    assert set(services) == {"postgresql", "temporal", "temporal-ui", *OURS}
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["setup"]["restart"] == "no"  # one-shot
    for service in ("worker", "api"):
        waits_for = services[service]["depends_on"]["setup"]["condition"]
        assert waits_for == "service_completed_successfully"
    ui = services["temporal-ui"]["environment"]
    assert ui["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"  # read-only
    assert ui["TEMPORAL_CODEC_ENDPOINT"]


def test_every_command_is_a_console_script_of_the_package() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    services = stack()["services"]
    commands = {name: services[name]["command"] for name in OURS}
    assert {command[0] for command in commands.values()} <= set(scripts)
    # The set-up job's sub-command is one `starter.py` knows.
    assert starter_parser().parse_args(commands["setup"][1:]).command == "setup"
    assert dockerfile().cmd == '["aftersales-worker"]'


def test_every_variable_our_services_read_is_a_setting() -> None:
    known = setting_variables() | {"DATABASE_URL"}
    for name in OURS:
        named = set(stack()["services"][name]["environment"])
        assert named - known == set(), name


def test_ports_match_the_settings_and_the_image() -> None:
    defaults = Settings()
    services = stack()["services"]
    api_port = services["api"]["ports"][0].rsplit(":", 1)[1]
    worker = services["worker"]
    status_port = worker["environment"]["AFTERSALES_WORKER_STATUS_PORT"]
    assert int(api_port) == defaults.api_port
    assert int(status_port) == defaults.worker_status_port
    assert worker["expose"] == [status_port]
    assert f":{status_port}/healthz" in worker["healthcheck"]["test"][-1]
    assert f":{api_port}/healthz" in services["api"]["healthcheck"]["test"][-1]
    exposed = next(i["value"] for i in dockerfile().structure if i["instruction"] == "EXPOSE")
    assert set(exposed.split()) == {api_port, status_port}


def test_the_image_builds_a_wheel_then_runs_it_as_nobody_special() -> None:
    build, runtime = stages()
    assert build[0]["value"].endswith(" AS build")
    assert "-slim-" in runtime[0]["value"]
    run_steps = " ".join(i["value"] for i in runtime if i["instruction"] == "RUN")
    assert BUILD_TOOLS.search(run_steps) is None, run_steps
    assert "--no-index" in run_steps  # only the wheels built in the first stage
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert any(c.startswith("--from=build /wheels") for c in copies)
    assert all(c.startswith(("--from=build", "policy.toml")) for c in copies), copies
    (user,) = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    assert runtime[-1]["instruction"] == "CMD"


@pytest.mark.parametrize(
    "package", ["domain", "workflows", "activities", "infra", "api", "desk", "stack"]
)
def test_the_build_stage_copies_every_package(package: str) -> None:
    (build, _) = stages()
    copied = {i["value"].split()[0] for i in build if i["instruction"] == "COPY"}
    assert package in copied
    assert {"worker.py", "starter.py", "pyproject.toml"} <= {
        word for value in (i["value"] for i in build if i["instruction"] == "COPY")
        for word in value.split()
    }  # fmt: skip
