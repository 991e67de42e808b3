"""refq.dist — distributed work: Dask clusters (an embedded LocalCluster or a running
scheduler), task submission behind one interface (in this process or on Dask), and the
SQLite result store of sweeps.

Imports nothing of refq but errors. Dask is the optional extra ``dist``
(``pip install 'refq[dist]'``), imported only when a cluster is opened; the store and the
in-process executor need only the standard library.
"""

from refq.dist.cluster import Cluster, import_distributed, machine_workers, open_cluster
from refq.dist.executor import DaskExecutor, Executor, InlineExecutor
from refq.dist.store import SCHEMA, CellTotal, Store, canonical

__all__ = ["SCHEMA", "CellTotal", "Cluster", "DaskExecutor", "Executor", "InlineExecutor",
           "Store", "canonical", "import_distributed", "machine_workers", "open_cluster"]
