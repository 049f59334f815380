"""Run directories and self-contained HTML reports (numbers first, figures embedded)."""

from netatlas.report._run import RunDir, environment, to_jsonable

__all__ = ["RunDir", "environment", "to_jsonable"]
