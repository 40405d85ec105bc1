"""What the file says about itself: container tags that call the video synthetic and name facecast,
and an optional signed C2PA manifest (`--sign CERT KEY`, through `c2pa-python`, the extra
`facecast[c2pa]`).

Container tags (written by `VideoWriter`, read back by `read_tags`): `comment` and `description`
in words, `keywords`, and `com.facecast.provenance` as JSON (generator, version, the IPTC digital
source type and the watermark's video id). mp4 and mov keep every key because the writer sets
`movflags=use_metadata_tags`; webm and mkv keep any key. Tags are easy to strip (any re-encode
that does not copy metadata drops them); the watermark in the pixels is what survives that.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import FacecastError

GENERATOR = "facecast"
#: IPTC digital source type: a composite with synthetic elements (a real photo, animated).
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"
PROVENANCE_KEY = "com.facecast.provenance"
C2PA_EXTRA = "pip install 'facecast[c2pa]'"


def _version() -> str:
    from .. import __version__
    return __version__


def container_tags(payload=None) -> dict[str, str]:
    """The tags of a facecast video: it is synthetic, made by facecast; `payload` the watermark's."""
    mark = f" Its frames carry an invisible watermark, id {payload.video_id}." if payload is not None else ""
    text = (f"Synthetic video: a talking face animated from one photo by {GENERATOR} {_version()}; the person "
            f"did not say these words on camera.{mark} Check it with `facecast verify`.")
    info = {"synthetic": True, "generator": GENERATOR, "version": _version(),
            "digital_source_type": DIGITAL_SOURCE_TYPE,
            "watermark": payload.to_dict() if payload is not None else None}
    return {"comment": text, "description": text, "keywords": "synthetic, AI-generated, facecast",
            PROVENANCE_KEY: json.dumps(info, separators=(",", ":"))}


def read_tags(path: str | os.PathLike) -> dict:
    """The provenance the container states: {"synthetic", "generator", "version", "video_id", "comment"}
    from facecast's tags, or {} when there are none (or the file is not a container)."""
    import av
    try:
        with av.open(str(path)) as c:
            tags = {k.lower(): v for k, v in c.metadata.items()}
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return {}
    raw = tags.get(PROVENANCE_KEY)
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    if not isinstance(info, dict):
        return {}
    mark = info.get("watermark") if isinstance(info.get("watermark"), dict) else {}
    return {"synthetic": bool(info.get("synthetic")), "generator": info.get("generator"),
            "version": info.get("version"), "video_id": mark.get("video_id"), "comment": tags.get("comment")}


# ---- C2PA ----------------------------------------------------------------------------------------
def _c2pa():
    try:
        import c2pa
    except ImportError:
        raise FacecastError(f"--sign needs the C2PA library: {C2PA_EXTRA}") from None
    return c2pa


MIME = {".mp4": "video/mp4", ".mov": "video/quicktime", ".png": "image/png", ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg", ".webp": "image/webp"}


def check_signing(cert: str | os.PathLike, key: str | os.PathLike, output: str | os.PathLike) -> None:
    """Fail early, before rendering, when `--sign CERT KEY` cannot work for `output`."""
    _c2pa()
    ext = Path(output).suffix.lower()
    if ext not in (".mp4", ".mov"):
        raise FacecastError(f"--sign writes a C2PA manifest into .mp4 or .mov files, not {ext or 'a folder'}")
    for what, p in (("certificate", cert), ("key", key)):
        if not Path(p).is_file():
            raise FacecastError(f"the signing {what} {p} is not a file")


def manifest_json(payload=None) -> str:
    """The C2PA manifest facecast signs: created by facecast, a composite with synthetic parts."""
    return json.dumps({
        "claim_generator_info": [{"name": GENERATOR, "version": _version()}],
        "title": "facecast video",
        "assertions": [
            {"label": "c2pa.actions",
             "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                                   "softwareAgent": {"name": GENERATOR, "version": _version()}}]}},
            {"label": "com.facecast.provenance",
             "data": {"synthetic": True, "watermark": payload.to_dict() if payload is not None else None}},
        ]})


def _signing_alg(c2pa, key_pem: bytes):
    """The C2PA signing algorithm for the private key's type (EC P-256/384/521, Ed25519, RSA-PSS)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    try:
        k = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise FacecastError(f"the signing key is not an unencrypted PEM private key ({e})") from None
    if isinstance(k, ec.EllipticCurvePrivateKey):
        return {256: c2pa.C2paSigningAlg.ES256, 384: c2pa.C2paSigningAlg.ES384,
                521: c2pa.C2paSigningAlg.ES512}.get(k.curve.key_size, c2pa.C2paSigningAlg.ES256)
    if isinstance(k, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(k, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise FacecastError("the signing key must be EC, Ed25519 or RSA")


def sign_file(src: str | os.PathLike, dst: str | os.PathLike, cert: str | os.PathLike, key: str | os.PathLike,
              payload=None) -> None:
    """Write `src` with a signed C2PA manifest into `dst` (a new file)."""
    c2pa = _c2pa()
    cert_pem, key_pem = Path(cert).read_bytes(), Path(key).read_bytes()
    info = c2pa.C2paSignerInfo(_signing_alg(c2pa, key_pem), cert_pem, key_pem, None)
    mime = MIME.get(Path(src).suffix.lower(), "video/mp4")
    try:
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest_json(payload)) as builder, \
                open(src, "rb") as s, open(dst, "wb") as d:
            builder.sign(signer, mime, s, d)
    except c2pa.C2paError as e:
        raise FacecastError(f"C2PA signing failed: {e}") from None


def read_manifest(path: str | os.PathLike) -> dict:
    """The file's C2PA manifest: {"present": False} when it has none; else "valid" (the signature and
    the hashes of the content check out; a self-signed or unknown certificate is reported under
    "trusted": False, not as invalid), "validation_state", "claim_generator", "synthetic", "issues";
    {"present": None, "error": ...} when the C2PA library is missing."""
    try:
        import c2pa
    except ImportError:
        return {"present": None, "error": f"C2PA not checked: {C2PA_EXTRA}"}
    mime = MIME.get(Path(path).suffix.lower())
    if mime is None:
        return {"present": False}
    try:
        with open(path, "rb") as f, c2pa.Reader(mime, f) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() if hasattr(reader, "get_validation_state") else None
    except c2pa.C2paError as e:
        text = str(e)
        if "ManifestNotFound" in type(e).__name__ or "not found" in text.lower() or "no jumbf" in text.lower():
            return {"present": False}
        return {"present": True, "valid": False, "issues": [text]}
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    statuses = store.get("validation_status") or []
    codes = [s.get("code", "") for s in statuses]
    untrusted = {"signingCredential.untrusted"}
    issues = [c for c in codes if c not in untrusted]
    gen = manifest.get("claim_generator_info") or [{}]
    facecast = next((a.get("data", {}) for a in manifest.get("assertions", [])
                     if a.get("label") == "com.facecast.provenance"), {})
    return {"present": True, "valid": not issues, "trusted": not any(c in untrusted for c in codes),
            "validation_state": state, "claim_generator": gen[0].get("name"),
            "synthetic": bool(facecast.get("synthetic")), "issues": issues}
