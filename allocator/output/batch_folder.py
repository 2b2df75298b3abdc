"""The folder of a batch (`allocator batch MANIFEST --out DIR`), written by the client as
the tasks' results arrive, inside one staging folder swapped in at the end (core.folders):

    DIR/batch.csv                     one row per instance, scenario and budget point
    DIR/batch_summary.json            the manifest, the executor and its workers, counts, time
    DIR/<run>/<scenario>/             a sweep folder (frontier.csv ...) when the run has
                                      budgets, else a results folder (summary.json ...)
    DIR/<run>/comparison.csv, .png    for a run with scenarios and no budgets
"""

from __future__ import annotations

from pathlib import Path

from allocator.core.tables import write_csv
from allocator.output.results_folder import summary_json, write_tables
from allocator.output.whatif_folders import comparison_table, fill_sweep
from allocator.pipeline.result import DECIMALS
from allocator.whatif.batch import BatchOutcome, BatchResult
from allocator.whatif.compare import COMPARISON_COLUMNS


def fill_outcome(outcome: BatchOutcome, folder: Path) -> None:
    """One task's folder, DIR/<run>/<scenario>/, into the (staging) batch folder; a task that
    failed has its row in batch.csv and no folder."""
    if outcome.error:
        return
    target = folder / outcome.run / outcome.folder
    target.mkdir(parents=True)
    if outcome.sweep is not None:
        fill_sweep(outcome.sweep, target)
    elif outcome.result is not None:
        write_tables(outcome.result, target)


def fill_batch(batch: BatchResult, folder: Path) -> None:
    """batch.csv, batch_summary.json and each scenario run's comparison files."""
    import pandas as pd

    from allocator.output import plots  # matplotlib only when a chart is drawn

    write_csv(batch.table, folder / "batch.csv", decimals=DECIMALS, float_format="%.10g")
    (folder / "batch_summary.json").write_text(summary_json(batch.summary), encoding="utf-8")
    for run, rows in batch.comparisons.items():
        table = pd.DataFrame(rows)
        for col in COMPARISON_COLUMNS:
            if col not in table.columns:
                table[col] = None
        table = table[COMPARISON_COLUMNS]
        (folder / run).mkdir(exist_ok=True)
        write_csv(comparison_table(table), folder / run / "comparison.csv",
                  decimals=DECIMALS, float_format="%.10g")
        name, currency = batch.labels.get(run, (run, "CNY"))
        plots.plot_comparison(table, folder / run / "comparison.png", instance=name,
                              currency=currency)


__all__ = ["fill_batch", "fill_outcome"]
