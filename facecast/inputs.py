"""Input paths: one check for every file the user names (portrait, audio, controls, labels).

`check_input_file` turns what can be wrong with a path before it is even opened into one
`FacecastError` sentence that says which: not there, a link to nothing, a symlink loop, a
folder, or not reachable (permissions). Reading the file's contents is the caller's job.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import FacecastError


def check_input_file(path: str | os.PathLike, kind: str) -> Path:
    """`path` as a Path when it names an existing file (through any symlinks), else FacecastError.

    kind: what the file is for, in words ('image', 'audio file', 'controls file'); it starts
    the messages, e.g. 'image not found: x.jpg; check the path and try again'.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FacecastError(f"{kind} path is a symlink loop: {p}; point it at a real file") from None
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            if p.is_symlink():
                raise FacecastError(f"{kind} not found: {p} is a link to {os.readlink(p)}, which does not "
                                    "exist; check the link") from None
            raise FacecastError(f"{kind} not found: {p}; check the path and try again") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise FacecastError(f"cannot read {kind} {p}: permission denied; check its permissions") from None
        raise FacecastError(f"cannot read {kind} {p}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        article = "an" if kind[:1] in "aeiou" else "a"
        raise FacecastError(f"{p} is a folder, not {article} {kind}; pass the path of a file")
    return p
