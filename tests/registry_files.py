"""Real test material taken from source archives on the Python package index.

Photos (portraits that show teeth or an open mouth; `skimage.data.astronaut()`, Eileen Collins
smiling with her teeth showing, ships inside scikit-image and needs nothing from here):
- `obama.jpg` (a broad smile, teeth showing) and `obama2.jpg` (speaking, mouth open, upper and lower
  teeth): official White House photographs (works of the US government, public domain) that ship in
  the source distribution of `face_recognition` 1.3.0 as its own test images. `face_recognition`
  itself cannot be installed here (it builds dlib).

Recordings:
- `vocadito_10.wav` (9.1 s) and `vocadito_14.wav` (12.2 s): solo singing, a cappella, from the
  Vocadito dataset (CC BY 4.0), which ship in the source distribution of Spotify's `basic-pitch`
  0.4.0 as its test audio.

Each source archive is fetched with `pip download --no-deps` by exact version, checked against
its SHA-256, and the files are unpacked (each checked against its own SHA-256) into a cache folder
(`FACECAST_TEST_FILES`, default ~/.cache/facecast/test-files). Tests that need them skip, saying
why, when PyPI cannot be reached. Nothing here is drawn or generated.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceArchive:
    """An sdist on PyPI: requirement, file name, its SHA-256, and the folder the files sit in."""

    requirement: str
    file: str
    sha256: str
    folder: str


FACE_RECOGNITION = SourceArchive("face_recognition==1.3.0", "face_recognition-1.3.0.tar.gz",
                                 "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
                                 "face_recognition-1.3.0/tests/test_images")
BASIC_PITCH = SourceArchive("basic-pitch==0.4.0", "basic_pitch-0.4.0.tar.gz",
                            "6f48ac4b909c990fd59460622137a03b857c829bb1f3e65c71708da576ab68e5",
                            "basic_pitch-0.4.0/tests/resources")
#: name -> (archive, SHA-256 of the file inside it)
FILES = {
    "obama.jpg": (FACE_RECOGNITION, "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    "obama2.jpg": (FACE_RECOGNITION, "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    "vocadito_10.wav": (BASIC_PITCH, "0978bde1c130ae26a9cfcd90012f12fdaf9877bbe45cf21c5237ba7ac9b8703b"),
    "vocadito_14.wav": (BASIC_PITCH, "a41e814df6ee5840f0beaea5da2ab3ad6b38be62b169da08962a722bcc06cdd1"),
}


class FileUnavailable(RuntimeError):
    """The archive could not be fetched (no route to PyPI) or did not match its hash."""


def cache_dir() -> Path:
    return Path(os.environ.get("FACECAST_TEST_FILES") or Path.home() / ".cache" / "facecast" / "test-files")


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def registry_file(name: str) -> Path:
    """Path of a cached registry file (`FILES`), fetching its archive once when needed."""
    if name not in FILES:
        raise KeyError(f"unknown test file {name!r}; known: {', '.join(FILES)}")
    src, digest = FILES[name]
    out = cache_dir() / name
    if out.exists() and _sha256(out) == digest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, src.requirement]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise FileUnavailable(f"pip download {src.requirement} failed: {e}") from None
        archive = Path(tmp) / src.file
        if r.returncode != 0 or not archive.exists():
            raise FileUnavailable(f"pip download {src.requirement} failed: {(r.stderr or r.stdout).strip()[-300:]}")
        if _sha256(archive) != src.sha256:
            raise FileUnavailable(f"{src.file} does not match its SHA-256")
        with tarfile.open(archive) as tar:
            for n, (s, d) in FILES.items():
                if s != src:
                    continue
                member = tar.extractfile(f"{src.folder}/{n}")
                data = member.read() if member else b""
                if hashlib.sha256(data).hexdigest() != d:
                    raise FileUnavailable(f"{n} in {src.file} does not match its SHA-256")
                part = cache_dir() / (n + ".part")
                part.write_bytes(data)
                part.replace(cache_dir() / n)
    return out


def registry_file_or_skip(name: str) -> Path:
    """`registry_file(name)`, or skip the calling test, saying why, when it cannot be had."""
    import pytest
    try:
        return registry_file(name)
    except FileUnavailable as e:
        pytest.skip(f"{name} not available: {e}")
