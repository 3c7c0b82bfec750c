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


class BaselineGateError(DataQualityError):
    """Dense models no better than the trivial baseline: that architecture's comparison stops (exit 1).
    `spec` holds the baseline and the dense models' scores (pie_mlops/compare/gate.py)."""

    def __init__(self, message: str, spec: dict | None = None):
        super().__init__(message)
        self.spec = spec
