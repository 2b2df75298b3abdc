"""The README's three-year example (section "The planner's year") runs as written: every
command exits 0 and the Python lines after it run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from allocator.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_three_year_example_runs_as_written(tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The planner's year"):]
    section = section[:section.index("\n## ", 1)]
    commands = re.search(r"```bash\n(.*?)```", section, re.S)
    python = re.search(r"```\n(import allocator.*?)```", section, re.S)
    assert commands and python
    monkeypatch.chdir(tmp_path)
    lines = [ln for ln in commands.group(1).splitlines() if ln.strip()]
    assert len(lines) >= 7
    for line in lines:
        args = shlex.split(line)
        assert args[0] == ".venv/bin/allocator"
        res = CliRunner().invoke(main, args[1:])
        assert res.exit_code == 0, (line, res.output)
    assert (tmp_path / "years" / "2029" / "incumbents.csv").is_file()
    assert (tmp_path / "years" / "diff-2027-2028" / "diff.json").is_file()
    exec(compile(python.group(1), "README", "exec"), {})  # noqa: S102 - the README's own code
    assert (tmp_path / "years" / "diff" / "demands.csv").is_file()
