"""Input problems: one record per bad value, so every mistake is reported at once."""

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
        where += f", column {self.column}" if self.column else ""
        shown = "" if self.value is None or self.value == "" else f" (value: {self.value!r})"
        end = "" if self.fix.endswith((".", "?", "!", ")")) else "."
        return f"{where}: {self.message}{shown}. Fix: {self.fix}{end}"


class InputError(Exception):
    """Raised with every error found; the CLI prints them and exits 2."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the input")
