"""Run directories and self-contained HTML reports (numbers first, figures embedded)."""

from netatlas.report._run import (
    RunDir,
    add_overwrite_options,
    atomic_write,
    command_runs,
    environment,
    new_temporary,
    to_jsonable,
)

__all__ = ["RunDir", "add_overwrite_options", "atomic_write", "command_runs", "environment", "new_temporary",
           "to_jsonable"]
