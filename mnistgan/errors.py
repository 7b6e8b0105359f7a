"""The one exception type that reaches the user as a plain message."""


class UserError(Exception):
    """A problem the user can fix: a bad flag, a missing or corrupt file.

    `main.py` prints its message as one line and exits with status 2; code
    below the CLI raises it instead of printing.
    """
