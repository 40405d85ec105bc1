"""Writing outputs safely: nothing but the named output is ever touched, and never half-written.

Every file facecast writes (video, motion file, overlay image) is first written to a hidden
temporary file beside the target and renamed onto it only when complete (`PendingFile`), so an
error, Ctrl-C or SIGTERM leaves nothing behind. Temporary files are created with mode
`0o666 & ~umask`, like any file the user's shell would create, so the renamed output has the
permissions the user expects.

A folder of PNG frames (`PendingFrameFolder`) is written only into a new folder, an empty one,
or one that holds nothing but this tool's own `frame_NNNNNN.png` files; any other existing path
is refused before anything is written, so `-o .` or `-o ~/photos` can never delete a file.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from .errors import FacecastError

FRAME_NAME = "frame_{:06d}.png"
FRAME_PATTERN = re.compile(r"frame_\d{6,}\.png")
_TEMP_TRIES = 100


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _create_temp(parent: Path, stem: str, suffix: str, folder: bool) -> Path:
    """A new hidden file (or folder) `parent/.STEM.XXXXXXXX SUFFIX`, created exclusively, with
    the mode the umask gives (0o666 / 0o777 & ~umask), unlike `tempfile`'s private 0o600."""
    for _ in range(_TEMP_TRIES):
        p = parent / f".{stem}.{secrets.token_hex(4)}{suffix}"
        try:
            if folder:
                os.mkdir(p, 0o777)
            else:
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return p
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


class PendingFile:
    """A temporary file beside `target`; `commit()` renames it onto `target`, `discard()` deletes it.

    Use it as a context manager: the file is committed when the block ends normally and
    discarded on any exception (KeyboardInterrupt included).
    """

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        try:
            self.path = _create_temp(self.target.parent, self.target.stem, self.target.suffix, folder=False)
        except OSError as e:
            raise FacecastError(f"cannot write {self.target}: {_reason(e)}") from None

    def commit(self) -> Path:
        try:
            os.replace(self.path, self.target)
        except OSError as e:
            self.discard()
            raise FacecastError(f"cannot write {self.target}: {_reason(e)}") from None
        return self.target

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "PendingFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False


def check_motion_path(path: str | os.PathLike | None) -> None:
    """Fail early on a motion file that could not be written: not .json / .csv, or a folder that
    does not exist (None: nothing to check)."""
    if path is None:
        return
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".json", ".csv"):
        raise FacecastError(f"motion files are .json or .csv, not {ext or 'no extension'!r}")
    if not p.parent.exists():
        raise FacecastError(f"output folder {p.parent} does not exist")


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a `PendingFile`."""
    with PendingFile(path) as f:
        try:
            f.path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise FacecastError(f"cannot write {path}: {_reason(e)}") from None


def check_frame_folder(folder: str | os.PathLike, ignore: Path | None = None) -> Path:
    """Refuse a PNG-frame output folder that exists and holds anything but `frame_NNNNNN.png` files.

    A path that does not exist yet is fine (its parent is checked by the caller). `ignore`: a
    temporary folder of our own inside `folder`, left out of the check.
    """
    out = Path(folder)
    if not out.exists() and not out.is_symlink():
        return out
    if not out.is_dir():
        raise FacecastError(f"{out} exists and is not a folder; give a new folder name for PNG frames, "
                            "or a file name ending in .mp4, .webm, .mov or .mkv")
    try:
        entries = list(os.scandir(out))
    except OSError as e:
        raise FacecastError(f"cannot read the output folder {out}: {_reason(e)}") from None
    for entry in entries:
        if ignore is not None and Path(entry.path) == ignore:
            continue
        if not (FRAME_PATTERN.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)):
            raise FacecastError(f"refusing to write frames into {out}: it holds other files (such as {entry.name!r}); "
                                "use a new or empty folder")
    return out


class PendingFrameFolder:
    """PNG frames for `target`, written into a temporary folder and moved into place by `commit()`.

    - `target` does not exist: frames go into a hidden folder beside it, renamed onto it at the end.
    - `target` is an empty folder or holds only `frame_*.png`: frames go into a hidden folder
      inside it; at the end they replace the old frames one by one, and old frames past the new
      last one are removed. Nothing else is ever in that folder (checked again before moving).
    - Anything else is refused by `check_frame_folder` before a file is created.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = check_frame_folder(target)
        self.frames = 0
        self._into_existing = self.target.is_dir()
        parent = self.target if self._into_existing else self.target.parent
        stem = "facecast-frames" if self._into_existing else (self.target.name or "frames")
        try:
            self.path = _create_temp(parent, stem, "", folder=True)
        except OSError as e:
            raise FacecastError(f"cannot write {self.target}: {_reason(e)}") from None

    def write(self, bgr) -> None:
        """Append one frame, (H, W, 3) uint8 in BGR order (OpenCV's)."""
        import cv2
        p = self.path / FRAME_NAME.format(self.frames)
        if not cv2.imwrite(str(p), bgr):
            raise FacecastError(f"cannot write {self.target}: writing {p.name} failed (disk full?)")
        self.frames += 1

    def commit(self) -> Path:
        try:
            if not self._into_existing:
                os.replace(self.path, self.target)
                return self.target
            check_frame_folder(self.target, ignore=self.path)
            new = {FRAME_NAME.format(i) for i in range(self.frames)}
            for name in sorted(new):
                os.replace(self.path / name, self.target / name)
            for entry in os.scandir(self.target):
                if FRAME_PATTERN.fullmatch(entry.name) and entry.name not in new and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            os.rmdir(self.path)
        except OSError as e:
            self.discard()
            raise FacecastError(f"cannot write {self.target}: {_reason(e)}") from None
        except BaseException:
            self.discard()
            raise
        return self.target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)  # our own temporary folder, nothing else
