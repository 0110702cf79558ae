"""Ed25519 signatures of release files (a manifest, an image, a patch), through `cryptography`.

A signature is a small JSON file beside what it signs (`<name>.sig`): the signed file's name and
sha256, the signing key's id (sha256 of its raw public key) and the signature over the file's
bytes. The build signs when a private key is configured (SLIMFREEZE_SIGNING_KEY names a PEM file,
which must lie outside the project: a key in the repository is no secret). `flash --trusted-key`
refuses what is unsigned, changed after signing, or signed by another key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from build.errors import ArtifactError, ConfigError
from build.manifest import MANIFEST_NAME, load_manifest

SCHEMA = "slimfreeze.signature/1"
SUFFIX = ".sig"
KEY_ENV = "SLIMFREEZE_SIGNING_KEY"


class SignatureRefused(ArtifactError):
    """A file is unsigned, changed since it was signed, or signed by a key that is not trusted."""


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private.public_key())


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def configured_key(project_root: Path, environ: Mapping[str, str] = os.environ) -> SigningKey | None:
    """The key named by SLIMFREEZE_SIGNING_KEY, or None when it is unset (the build then signs nothing)."""
    value = environ.get(KEY_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    real, project = os.path.realpath(path), os.path.realpath(project_root)
    if os.path.commonpath([real, project]) == project:
        raise ConfigError(f"{KEY_ENV}={value}: the signing key lies inside the project {project_root}; "
                          f"keep it outside the repository")
    return load_private_key(path)


def load_private_key(path: Path) -> SigningKey:
    key = _load(serialization.load_pem_private_key, _read(path, "signing key"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an unencrypted PEM Ed25519 private key "
                          f"(make one with `openssl genpkey -algorithm ed25519 -out KEY.pem`)")
    return SigningKey(key)


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = _load(serialization.load_pem_public_key, _read(path, "trusted key"))
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not a PEM Ed25519 public key "
                          f"(`openssl pkey -in KEY.pem -pubout -out KEY.pub` writes one)")
    return key


def _load(loader: Callable[..., object], data: bytes, **kwargs: object) -> object | None:
    """The key in `data`, or None for anything that is not a readable key (encrypted, DER, garbage)."""
    try:
        return loader(data, **kwargs)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def signature_document(data: bytes, name: str, key: SigningKey) -> bytes:
    """The signature file's bytes for `data` (pure: Ed25519 signatures are deterministic)."""
    doc = {"schema": SCHEMA, "algorithm": "ed25519", "signed": name, "sha256": hashlib.sha256(data).hexdigest(),
           "key": key.key_id, "signature": base64.b64encode(key.private.sign(data)).decode("ascii")}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign_file(path: Path, key: SigningKey) -> Path:
    """Write `<path>.sig` (through a temporary name, so a reader never sees half a signature)."""
    out = signature_path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(signature_document(path.read_bytes(), path.name, key))
    os.replace(tmp, out)
    return out


def verify_bytes(data: bytes, signature: bytes | None, trusted: Ed25519PublicKey, *, what: str) -> None:
    """Refuse `data` unless `signature` (a signature file's bytes) is the trusted key's over it."""
    if signature is None:
        raise SignatureRefused(f"{what} is not signed (no {SUFFIX} file beside it); "
                               f"a trusted key was given, so unsigned files are refused")
    try:
        doc = json.loads(signature)
        ok_doc = isinstance(doc, dict) and doc.get("schema") == SCHEMA and doc.get("algorithm") == "ed25519"
        raw = base64.b64decode(doc["signature"], validate=True) if ok_doc else b""
    except (ValueError, KeyError, TypeError):
        ok_doc, raw = False, b""
    if not ok_doc or len(raw) != 64:
        raise SignatureRefused(f"the signature of {what} is not a slimfreeze Ed25519 signature file")
    trusted_id = key_id(trusted)
    if doc.get("key") != trusted_id:
        raise SignatureRefused(f"{what} is signed by key {str(doc.get('key'))[:16]}…, not by the trusted key "
                               f"{trusted_id[:16]}…")
    try:
        trusted.verify(raw, data)
    except InvalidSignature:
        raise SignatureRefused(f"{what} does not match its signature: it was changed after it was signed "
                               f"(or the signature was)") from None


def verify_file(path: Path, trusted: Ed25519PublicKey) -> bytes:
    """The file's bytes, once its signature file shows the trusted key signed exactly them."""
    data = path.read_bytes()
    sig = signature_path(path)
    verify_bytes(data, sig.read_bytes() if sig.exists() else None, trusted, what=str(path))
    return data


def sign_build(folder: Path, key: SigningKey) -> list[Path]:
    """Sign a built dist folder's manifest (which holds every file's sha256) and its image (for
    a device that takes the image alone); return the signature files written."""
    signed = [sign_file(folder / MANIFEST_NAME, key)]
    image = load_manifest(folder).image
    if image is not None:
        signed.append(sign_file(folder / image.path, key))
    return signed
