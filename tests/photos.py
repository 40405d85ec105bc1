"""Portraits that show teeth or an open mouth, taken from packages on the Python package index.

- `skimage.data.astronaut()`: Eileen Collins smiling with her teeth showing (NASA, public domain),
  shipped inside scikit-image (a dependency).
- `obama.jpg` (a broad smile, teeth showing) and `obama2.jpg` (speaking, mouth open, upper and lower
  teeth): official White House photographs (works of the US government, public domain) that ship in
  the source distribution of `face_recognition` 1.3.0 on PyPI, as its own test images.
  `face_recognition` itself cannot be installed here (it builds dlib), so its source archive is
  fetched with `pip download --no-deps` by exact version, checked against its SHA-256, and the two
  images are unpacked into a cache folder (`FACECAST_TEST_PHOTOS`, default
  ~/.cache/facecast/test-photos). Tests that need them skip, saying why, when PyPI cannot be reached.

Nothing here is drawn or generated: these are real photographs of real faces.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "face_recognition==1.3.0"
SDIST_FILE = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
#: name -> SHA-256 of the image inside the archive (tests/test_images/NAME)
PHOTOS = {
    "obama.jpg": "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    "obama2.jpg": "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
}


class PhotoUnavailable(RuntimeError):
    """The archive could not be fetched (no route to PyPI) or did not match its hash."""


def cache_dir() -> Path:
    return Path(os.environ.get("FACECAST_TEST_PHOTOS") or Path.home() / ".cache" / "facecast" / "test-photos")


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def registry_photo(name: str) -> Path:
    """Path of a cached registry photo (`PHOTOS`), fetching the archive once when needed."""
    if name not in PHOTOS:
        raise KeyError(f"unknown test photo {name!r}; known: {', '.join(PHOTOS)}")
    out = cache_dir() / name
    if out.exists() and _sha256(out) == PHOTOS[name]:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, SDIST]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PhotoUnavailable(f"pip download {SDIST} failed: {e}") from None
        archive = Path(tmp) / SDIST_FILE
        if r.returncode != 0 or not archive.exists():
            raise PhotoUnavailable(f"pip download {SDIST} failed: {(r.stderr or r.stdout).strip()[-300:]}")
        if _sha256(archive) != SDIST_SHA256:
            raise PhotoUnavailable(f"{SDIST_FILE} does not match its SHA-256")
        with tarfile.open(archive) as tar:
            for n, digest in PHOTOS.items():
                member = tar.extractfile(f"face_recognition-1.3.0/tests/test_images/{n}")
                data = member.read() if member else b""
                if hashlib.sha256(data).hexdigest() != digest:
                    raise PhotoUnavailable(f"{n} in {SDIST_FILE} does not match its SHA-256")
                part = cache_dir() / (n + ".part")
                part.write_bytes(data)
                part.replace(cache_dir() / n)
    return out
