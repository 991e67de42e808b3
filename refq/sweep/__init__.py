"""refq.sweep — methods × bits × models × seeds × {fake-quant, integer} as tasks: plans
(cells, preps, shards), the tasks workers run, the driver that writes each result to the
SQLite store as it ends, and the tables and plots computed from the stored rows.

Uses refq.methods, refq.program and refq.nn for the work and refq.dist for clusters and
the store; without a cluster everything runs in the calling process.
"""

from refq.sweep.driver import Outcome, Work, execute, pending
from refq.sweep.plan import Options, Plan, build_plan
from refq.sweep.report import csv_text, markdown, plots, setups, text

__all__ = ["Options", "Outcome", "Plan", "Work", "build_plan", "csv_text", "execute",
           "markdown", "pending", "plots", "setups", "text"]
