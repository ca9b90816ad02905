"""Issue 16, item 7: the off-loopback guard knows the development keys by their material.
Before: it went by the key id's prefix and the files' folder, so the development key set
with its key id renamed, the development grant key and clients file copied elsewhere,
were served from 0.0.0.0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from domain.case import Role
from infra.security.edge_identity import DevKeys, ensure_dev_clients, refuse_unsafe_exposure
from infra.security.identity import MachineClients
from infra.settings import PROJECT_ROOT, ConfigurationError, Settings
from tests.helpers import fresh_grant_key_pem

# A key set of an identity provider: the example EC key of RFC 7517, appendix A.1.
PROVIDER_JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1",
                           "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}  # fmt: skip


def copied_elsewhere(keys: DevKeys, clients_file: Path, to: Path) -> dict[str, str]:
    """The development key set with its key id renamed, the grant key and the clients
    file under other names in another folder: the settings that serve them."""
    to.mkdir()
    jwks = json.loads(keys.jwks.read_text())
    for key in jwks["keys"]:
        key["kid"] = "production-2026"
    (to / "idp.json").write_text(json.dumps(jwks))
    (to / "signing.pem").write_bytes(keys.grant_signing_key.read_bytes())
    (to / "machines.json").write_bytes(clients_file.read_bytes())
    return {
        "AFTERSALES_JWKS": str(to / "idp.json"),
        "AFTERSALES_GRANT_SIGNING_KEY": str(to / "signing.pem"),
        "AFTERSALES_CLIENTS_FILE": str(to / "machines.json"),
        "AFTERSALES_API_HOST": "0.0.0.0",
    }


def test_the_development_keys_copied_and_renamed_are_refused_at_start(tmp_path: Path) -> None:
    """`python -m api` as the attack ran it; `make run`'s key code records into the
    checkout's register, which the started API reads (R23)."""
    clients_file = tmp_path / "dev-clients.json"
    ensure_dev_clients(MachineClients(clients_file), tmp_path / "identity")
    environment = copied_elsewhere(DevKeys(tmp_path / "identity"), clients_file,
                                   tmp_path / "elsewhere")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env |= environment | {"TEMPORAL_ADDRESS": "127.0.0.1:9"}
    started = subprocess.run(
        [sys.executable, "-m", "api"], env=env, cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode != 0
    assert "AFTERSALES_JWKS" in started.stderr, started.stderr
    assert "development key" in started.stderr


def test_each_development_key_is_known_by_its_material_wherever_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # R23
    register = tmp_path / "fingerprints.txt"
    clients_file = tmp_path / "dev-clients.json"
    ensure_dev_clients(MachineClients(clients_file), tmp_path / "identity", register)
    environment = copied_elsewhere(DevKeys(tmp_path / "identity"), clients_file,
                                   tmp_path / "elsewhere")  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # The development folder is gone (moved away): the register still knows its keys.
    gone = tmp_path / "deleted-identity"

    def refused_for() -> str:
        with pytest.raises(ConfigurationError) as refusal:
            refuse_unsafe_exposure(Settings(), gone, register)
        return str(refusal.value).partition(":")[0]

    assert refused_for() == "AFTERSALES_JWKS"
    (tmp_path / "elsewhere" / "idp.json").write_text(json.dumps(PROVIDER_JWKS))
    assert refused_for() == "AFTERSALES_GRANT_SIGNING_KEY"
    (tmp_path / "elsewhere" / "signing.pem").write_bytes(fresh_grant_key_pem())
    assert refused_for() == "AFTERSALES_CLIENTS_FILE"
    own_clients = tmp_path / "own-clients.json"
    MachineClients(own_clients).add("carrier-desk", Role.CARRIER, ["DHL"])  # a dev name
    monkeypatch.setenv("AFTERSALES_CLIENTS_FILE", str(own_clients))
    # Nothing of the development's is left; off loopback the desk still needs a real
    # identity provider for its sign-in, and with one the edge starts.
    assert refused_for() == "AFTERSALES_OIDC_ISSUER"
    monkeypatch.setenv("AFTERSALES_OIDC_ISSUER", "https://idp.example")
    refuse_unsafe_exposure(Settings(), gone, register)


def test_keys_made_before_the_register_are_known_from_the_development_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # R23
    clients_file = tmp_path / "dev-clients.json"
    ensure_dev_clients(MachineClients(clients_file), tmp_path / "identity",
                       tmp_path / "register-then-lost.txt")  # fmt: skip
    environment = copied_elsewhere(DevKeys(tmp_path / "identity"), clients_file,
                                   tmp_path / "elsewhere")  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=r"^AFTERSALES_JWKS"):
        refuse_unsafe_exposure(Settings(), tmp_path / "identity", tmp_path / "empty.txt")
