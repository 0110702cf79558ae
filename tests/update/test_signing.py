"""Ed25519 signatures of release files (issue 19): keys made by OpenSSL are read, a signature
checks only the exact bytes it was made over and only against the key that made it."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from build.errors import ConfigError
from build.update.signing import (
    KEY_ENV,
    SignatureRefused,
    configured_key,
    load_private_key,
    load_public_key,
    sign_file,
    signature_path,
    verify_file,
)


def openssl_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A private key and its public key, as a release engineer makes them (OpenSSL's CLI)."""
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: openssl_key(folder, name) for name in ("release", "other")}


def test_a_signed_file_verifies_and_any_changed_byte_is_refused(tmp_path: Path, keys) -> None:
    private, public = keys["release"]
    image = tmp_path / "flash-min.squashfs"
    image.write_bytes(bytes(range(256)) * 64)
    sig = sign_file(image, load_private_key(private))
    assert sig == signature_path(image) and json.loads(sig.read_text())["signed"] == image.name
    assert verify_file(image, load_public_key(public)) == image.read_bytes()
    # OpenSSL agrees that it is a real Ed25519 signature over the file's bytes.
    raw = tmp_path / "raw.sig"
    raw.write_bytes(base64.b64decode(json.loads(sig.read_text())["signature"]))
    checked = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin",
                              "-in", str(image), "-sigfile", str(raw)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for offset in (0, 8191, len(image.read_bytes()) - 1):
        data = bytearray(image.read_bytes())
        data[offset] ^= 0x01
        image.write_bytes(bytes(data))
        with pytest.raises(SignatureRefused, match="changed after it was signed"):
            verify_file(image, load_public_key(public))
        data[offset] ^= 0x01
        image.write_bytes(bytes(data))
    verify_file(image, load_public_key(public))


def test_another_key_and_a_missing_or_garbled_signature_are_refused(tmp_path: Path, keys) -> None:
    image = tmp_path / "img"
    image.write_bytes(b"image bytes")
    with pytest.raises(SignatureRefused, match="is not signed"):
        verify_file(image, load_public_key(keys["release"][1]))
    sign_file(image, load_private_key(keys["other"][0]))
    with pytest.raises(SignatureRefused, match="not by the trusted key"):
        verify_file(image, load_public_key(keys["release"][1]))
    signature_path(image).write_text("{\"schema\": \"slimfreeze.signature/1\"}")
    with pytest.raises(SignatureRefused, match="not a slimfreeze Ed25519 signature"):
        verify_file(image, load_public_key(keys["release"][1]))


def test_keys_that_are_not_ed25519_or_lie_in_the_project_are_refused(tmp_path: Path, keys) -> None:
    rsa = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(rsa)],
                   check=True, capture_output=True)
    with pytest.raises(ConfigError, match="not an unencrypted PEM Ed25519 private key"):
        load_private_key(rsa)
    with pytest.raises(ConfigError, match="not a PEM Ed25519 public key"):
        load_public_key(keys["release"][0])  # a private key where the public one belongs
    with pytest.raises(ConfigError, match="cannot read the trusted key"):
        load_public_key(tmp_path / "missing.pub")
    project = tmp_path / "project"
    (project / "keys").mkdir(parents=True)
    inside = project / "keys" / "k.pem"
    inside.write_bytes(keys["release"][0].read_bytes())
    with pytest.raises(ConfigError, match="inside the project"):
        configured_key(project, {KEY_ENV: str(inside)})
    assert configured_key(project, {}) is None
    # The key id is the sha256 of the raw public key, as OpenSSL writes it (the last 32 bytes of its DER).
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(keys["release"][1]), "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert configured_key(project, {KEY_ENV: str(keys["release"][0])}).key_id == hashlib.sha256(der[-32:]).hexdigest()
