"""Error types the CLI turns into exit codes, so every failure ends in one clear line."""


class PieError(Exception):
    """Bad usage or bad input (a missing file, a malformed row): exit code 2."""

    exit_code = 2


class DataQualityError(Exception):
    """The data-quality gate failed: exit code 1. The message lists what failed."""

    exit_code = 1


class JobFailedError(PieError):
    """A worker job failed on every retry: exit code 1. The message names the jobs and errors."""

    exit_code = 1
