"""Errors that the CLI turns into one line on stderr and an exit status."""


class CostkitError(Exception):
    """A failure to report as one line, without a traceback."""

    exit_code = 1


class BadInput(CostkitError):
    """Malformed or out-of-range input (scenario, price book, bill, task dump, notification).

    The message names the file, the field and the line where they are known.
    """

    exit_code = 2

    def __init__(self, message, *, path=None, line=None, field=None):
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if field is not None:
            message = f"{field}: {message}"
        super().__init__(where + message)
        self.path, self.line, self.field = path, line, field


class RuntimeFailure(CostkitError):
    """The run could not finish (network, retries exhausted, store unavailable)."""

    exit_code = 1


class VarianceOutOfTolerance(CostkitError):
    """An audit found an item outside the tolerance (exit 3, for cron and CI)."""

    exit_code = 3


def one_line(value, limit: int = 300) -> str:
    """An exception or text as one line of at most `limit` characters (for error messages)."""
    text = " ".join(str(value).split()) or (type(value).__name__ if isinstance(value, BaseException) else "")
    return text if len(text) <= limit else text[:limit] + "..."
