"""allocator's exceptions (one base, narrow subclasses) and the input problem record.

Every error the library raises on purpose is an `AllocatorError`; the command line maps
`InputError`, `ResultsError`, `SolverError` and `OutputPathError` to exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One finding about the input: where it is, what is wrong and how to fix it.

    `row` is the row number as a spreadsheet shows it (header = row 1), None for a whole file
    or a YAML key.
    """

    file: str
    row: int | None
    column: str
    value: Any
    message: str
    fix: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file + (f", row {self.row}" if self.row is not None else "")
        # a CSV has columns; a YAML file, JSON file or an option has keys
        kind = "column" if self.file.lower().endswith(".csv") else "key"
        where += f", {kind} {self.column}" if self.column else ""
        shown = "" if self.value is None or self.value == "" else f" (value: {self.value!r})"
        end = "" if self.fix.endswith((".", "?", "!", ")")) else "."
        return f"{where}: {self.message}{shown}. Fix: {self.fix}{end}"


class AllocatorError(Exception):
    """Base of every error allocator raises on purpose."""


class ProblemsError(AllocatorError):
    """An error that carries every problem found at once (file, row, column, value, fix)."""

    what = "the input"

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"] or self.problems
        first = f": {errors[0]}" if errors else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{len(errors)} problem(s) in {self.what}{first}{more}")


class InputError(ProblemsError):
    """The instance (or a scenarios, manifest or options file) has errors."""


class ResultsError(ProblemsError):
    """A results folder cannot be read: a missing file or column, or unreadable JSON."""

    what = "the results folder"


class SolverError(AllocatorError):
    """A solver cannot be used as asked."""


class UnknownSolver(SolverError, ValueError):
    """A solver name that is not in the registry."""


class SolverUnavailable(SolverError):
    """A known solver that is not installed or cannot run on this machine."""


class OutputPathError(AllocatorError):
    """An output path allocator must not or cannot write (the user's files are protected)."""


class UsageError(AllocatorError, ValueError):
    """An argument of the library's functions that is out of range or malformed."""
