"""Exceptions that the command line turns into exit code 2 with a one-line message."""


class UsageError(Exception):
    """The command itself could not run: bad path, a task file that does not load, bad options."""


class TaskError(UsageError):
    """The task file is broken (missing ``Model``/``get_inputs``, raises on load, bad VARIANTS)."""
