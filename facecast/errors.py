"""User-facing errors and warnings.

Anything the user can fix (bad input, bad path) raises FacecastError: the CLI prints its message
on one line and exits with code 2; no traceback. A problem that still lets the job finish is a
FacecastWarning: the CLI prints `facecast: warning: ...` and goes on.
"""


class FacecastError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""

    exit_code = 2


class FacecastWarning(UserWarning):
    """Something the user should know about a job that still succeeds (e.g. a truncated audio
    file: the readable part is used). Issued with `warnings.warn`; the CLI prints it as one line
    `facecast: warning: ...`."""
