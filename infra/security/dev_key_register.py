"""What the development keys are, by their material: the off-loopback guard recognises
them by these fingerprints wherever they were copied and whatever their key id or file
is called (a key id or a path is only a name, and names can be changed).

Each development key `make run` makes (the tests make theirs with the same code) is
recorded when it is made, and again whenever it is found, so keys made before the
register existed are recorded on the next run: SHA-256 of a public key's
SubjectPublicKeyInfo (DER), for the staff-token key and the grant key alike, and the
stored SHA-256 of a development machine client's secret (the clients file keeps only that
hash, so a copied file is recognised by it). The register sits in .data, outside the
identity folder: deleting the keys to make new ones keeps the old ones known."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from infra.settings import DATA_DIR

DEV_KEY_REGISTER = DATA_DIR / "dev-key-fingerprints.txt"


def public_key_fingerprint(key: PublicKeyTypes) -> str:
    material = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"public-key-sha256:{hashlib.sha256(material).hexdigest()}"


def client_secret_fingerprint(secret_sha256: str) -> str:
    """A machine client's fingerprint: the hash of its secret, as its clients file keeps it."""
    return f"client-secret-sha256:{secret_sha256}"


def record(fingerprints: Iterable[str], register: Path = DEV_KEY_REGISTER) -> None:
    """Adds the fingerprints the register does not hold yet (one a line, appended: two
    processes recording at once each add whole lines)."""
    new = [f for f in dict.fromkeys(fingerprints) if f not in recorded(register)]
    if not new:
        return
    register.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(register, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as file:
        file.write("".join(f"{fingerprint}\n" for fingerprint in new))


def recorded(register: Path = DEV_KEY_REGISTER) -> frozenset[str]:
    try:
        return frozenset(line.strip() for line in register.read_text().splitlines() if line)
    except FileNotFoundError:
        return frozenset()
