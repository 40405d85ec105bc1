"""User-facing errors: anything the user can fix (bad input, bad path) raises FacecastError.

The CLI prints its message on one line and exits with code 2; no traceback.
"""


class FacecastError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""

    exit_code = 2
