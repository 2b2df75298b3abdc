"""Time per level: a level that is not settled keeps the time, the later ones keep a floor.

The lexicographic solve is driven with a scripted backend on a clock of its own, so what each
level is offered is checked exactly and never depends on the machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from allocator.data.validation import load_instance
from allocator.eligibility import compute_eligibility
from allocator.model.build import build_model
from allocator.pipeline import lexicographic
from allocator.pipeline.lexicographic import (
    LATER_LEVEL_FLOOR,
    level_budget,
    solve_lexicographic,
)
from allocator.solvers.base import SolveResult, Status

TINY = Path(__file__).resolve().parents[1] / "instances" / "tiny"


class Clock:
    """A perf_counter that moves only when the scripted session says time was spent."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


class ScriptedBackend:
    """Each level uses `used[k]` seconds (None: all it is offered) and is proven or not."""

    name = "scripted"
    accepts_start = True
    steerable = False
    class_model = False

    def __init__(self, clock: Clock, used: list[float | None], proven: list[bool]):
        self.clock, self.used, self.proven = clock, used, proven
        self.offered: list[float] = []

    def open(self, model, threads, seed):
        backend = self

        class Session:
            def set_objective(self, coefs, sense):
                self.coefs = coefs

            def add_row(self, *args):
                pass

            def solve(self, time_limit, mip_gap, start):
                k = len(backend.offered)
                backend.offered.append(time_limit)
                spent = backend.used[k]
                backend.clock.now += time_limit if spent is None else spent
                x = np.zeros(model.n_vars)
                obj = float(self.coefs @ x)
                status = Status.OPTIMAL if backend.proven[k] else Status.FEASIBLE
                bound = obj if backend.proven[k] else obj + 1.0
                return SolveResult(status, x, obj, bound, None, 0.0, "scripted")

        return Session()


@pytest.fixture(scope="module")
def model():
    inst = load_instance(TINY)
    return build_model(inst, compute_eligibility(inst))


def run(model, monkeypatch, used, proven, limit=60.0) -> list[float]:
    clock = Clock()
    monkeypatch.setattr(lexicographic, "time", clock)
    backend = ScriptedBackend(clock, used, proven)
    solve_lexicographic(model, backend, limit, 1e-4, 1, 0)
    return backend.offered


def test_an_unsettled_first_level_keeps_all_but_the_floors_of_the_later_ones(model,
                                                                             monkeypatch):
    floor = LATER_LEVEL_FLOOR * 60.0
    offered = run(model, monkeypatch, [None, None, None], [False, False, False])
    assert offered[0] == pytest.approx(60.0 - 2 * floor)
    assert offered[1] == pytest.approx(floor)  # what is left, less the cost level's floor
    assert offered[2] == pytest.approx(floor)


def test_a_level_settled_early_hands_its_time_to_the_next(model, monkeypatch):
    floor = LATER_LEVEL_FLOOR * 60.0
    offered = run(model, monkeypatch, [2.0, 10.0, None], [True, True, True])
    assert offered[0] == pytest.approx(60.0 - 2 * floor)
    assert offered[1] == pytest.approx(58.0 - floor)
    assert offered[2] == pytest.approx(48.0)  # the last level takes all that is left


def test_level_budget_splits_evenly_when_not_even_the_floors_are_left():
    assert level_budget(30.0, 60.0, 0) == 30.0
    assert level_budget(30.0, 60.0, 2) == pytest.approx(30.0 - 2 * LATER_LEVEL_FLOOR * 60.0)
    assert level_budget(6.0, 60.0, 2) == pytest.approx(2.0)  # floors 6 s each: no room
    assert level_budget(1.0, 2.0, 1) == pytest.approx(0.5)  # the 1 s minimum floor
