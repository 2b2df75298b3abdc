"""The offline HTML report of a folder allocator wrote: a plan (or, without one, what to
change), a budget sweep, or a policy comparison.

One self-contained file: styles inline, charts as inline SVG with their text as text, the
few CJK glyphs it uses embedded as a web font, no script, and a Content-Security-Policy that
forbids every request, so it opens the same on an offline PC. Everything shown is read back
from the folder's files (the headline is summary.json's figures); the instance, when it is
found unchanged, only tells why idle agencies got no work.

Extension point: `plan_page.EXTRA_SECTIONS[file_name] = render(folder, words, frame)` gives
another feature's CSV (changes.csv, funding.csv, ...) a section of its own; without one, every
CSV the folder holds is shown as a plain table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from allocator.core.errors import AllocatorError
from allocator.core.folders import write_bytes_atomically
from allocator.data.instance import Instance
from allocator.output.folder_reader import Folder, read_folder
from allocator.output.i18n import words
from allocator.output.report.html import page
from allocator.output.report.plan_page import EXTRA_SECTIONS, render_plan
from allocator.output.report.whatif_pages import render_compare, render_sweep
from allocator.output.report.year_pages import render_diff  # also registers changes.csv

REPORT_FILE = "report.html"


def find_instance(f: Folder, instance: Instance | str | Path | None = None
                  ) -> Instance | None:
    """The run's instance: the one given, else summary.json's instance_path when its files
    are unchanged (same SHA-256); None when it cannot be read."""
    from allocator.data.reading import instance_sha256
    from allocator.data.validation import load_instance

    if isinstance(instance, Instance):
        return instance
    path = Path(instance) if instance is not None else (
        Path(str(f.summary["instance_path"])) if f.summary.get("instance_path") else None)
    if path is None or not path.is_dir():
        return None
    sha = f.summary.get("instance_sha256")
    with contextlib.suppress(AllocatorError, OSError, ValueError):
        if instance is None and sha and instance_sha256(path) != sha:
            return None
        return load_instance(path)
    return None


def eligible_triples(inst: Instance | None) -> pd.DataFrame | None:
    if inst is None:
        return None
    from allocator.eligibility import compute_eligibility, plain_ids

    return plain_ids(compute_eligibility(inst).triples)


def render_report(folder: str | Path, lang: str | None = None,
                  instance: Instance | str | Path | None = None) -> str:
    """The report of a folder as HTML text (lang: en or zh; default the policy's
    report.language)."""
    f = read_folder(folder)
    w = words(lang or f.language)
    if f.kind == "sweep":
        return page(w.sweep_report, w.lang, render_sweep(f, w))
    if f.kind == "compare":
        return page(w.compare_report, w.lang, render_compare(f, w))
    if f.kind == "diff":
        return page(w.diff_report, w.lang, render_diff(f, w))
    triples = eligible_triples(find_instance(f, instance)) if f.kind == "plan" else None
    title = (w.plan_report if f.kind == "plan" else w.no_plan_report)
    name = str(f.summary.get("instance") or "")
    return page(f"{title}: {name}" if name else title, w.lang, render_plan(f, w, triples))


def write_report(folder: str | Path, out: str | Path | None = None, lang: str | None = None,
                 instance: Instance | str | Path | None = None, force: bool = False,
                 protect: Iterable[Path] = ()) -> Path:
    """Write the report of a folder (default: FOLDER/report.html), atomically; an existing
    file is replaced only if allocator wrote it (or with force)."""
    target = Path(out) if out is not None else Path(folder) / REPORT_FILE
    text = render_report(folder, lang, instance)
    return write_bytes_atomically(target, text.encode("utf-8"), force=force, protect=protect)


__all__ = ["EXTRA_SECTIONS", "REPORT_FILE", "render_report", "write_report"]
