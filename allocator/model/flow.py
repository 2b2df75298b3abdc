"""The funding split as a max-flow: scope groups (supply: their government cost) to the
sources that may pay for them (capacity: their amount).

A plan can be paid for exactly when the max-flow saturates every group (a transportation
problem; by max-flow/min-cut, when no set of groups needs more than the sources that may
pay for them hold). Used for warm starts here and for the written split (pipeline/funding);
the auditor has its own (analysis/audit/funding).
"""

from __future__ import annotations

import networkx as nx
import numpy as np


def max_flow(supply: np.ndarray, members: np.ndarray, caps: np.ndarray
             ) -> tuple[float, np.ndarray]:
    """Max-flow from groups (supply per group) to sources (members[g, s]: s may pay for g;
    caps per source). Returns the flow value and the (groups x sources) flows. Integer
    inputs give an exact integer flow (networkx); floats work to float precision."""
    g = nx.DiGraph()
    n_g, n_s = members.shape
    g.add_node("s")
    g.add_node("t")
    for k in range(n_g):
        g.add_edge("s", ("g", k), capacity=supply[k].item())
    for k, j in zip(*np.nonzero(members), strict=True):
        g.add_edge(("g", int(k)), ("f", int(j)))  # no capacity attribute: unbounded
    for j in range(n_s):
        g.add_edge(("f", j), "t", capacity=caps[j].item())
    value, flow = nx.maximum_flow(g, "s", "t")
    out = np.zeros(members.shape, dtype=np.result_type(supply, caps))
    for k, j in zip(*np.nonzero(members), strict=True):
        out[k, j] = flow[("g", int(k))][("f", int(j))]
    return value, out


def warm_split(supply: np.ndarray, members: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """A float split of the groups' supply over their sources for a warm start: the max-flow,
    each group's row scaled to its supply exactly (a start breaking a cap by float noise is
    still a good hint)."""
    if members.size == 0:
        return np.zeros(members.shape)
    _, flows = max_flow(supply.astype(float), members, caps.astype(float))
    flows = flows.astype(float)
    got = flows.sum(axis=1)
    scale = np.divide(supply, got, out=np.ones(len(supply)), where=got > 0)
    return flows * scale[:, None]
