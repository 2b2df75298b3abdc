"""`python -m allocator.cli`: the command line."""

from allocator.cli import run

run()
