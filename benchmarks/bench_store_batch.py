"""The store's batched write against the preparation, CPU per record, one process.

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/bench_store_batch.py [N] [BATCH] [URL]

``prepare_record`` (validate, hash, map, index rows) of N generated records, then
``Store.save_records`` in batches of BATCH on a fresh SQLite file (or an empty scratch database):
CPU ms per record of each. ``PYTHONPATH`` picks the code measured (e.g. a worktree of ``main``
against this one, run one after the other, so that both see the same load). Numbers, not
assertions.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import records  # noqa: E402 — a sibling script

import fhir_iastm  # noqa: E402
from fhir_iastm.config import Settings  # noqa: E402
from fhir_iastm.service import mapping_settings, prepare_record  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402


def cpu() -> float:
    """CPU seconds of this process."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    url = sys.argv[3] if len(sys.argv) > 3 else f"sqlite:///{tempfile.mkdtemp()}/batch.db"
    settings = mapping_settings(Settings())
    raws = list(records(n, f"SB{time.time_ns() % 10**7}"))
    store = Store(url)
    store.migrate()
    prepare_record(raws[0], settings)  # compiled tables and caches outside the clock
    start = cpu()
    prepared = [prepare_record(raw, settings) for raw in raws]
    mid = cpu()
    for first in range(0, n, batch):
        store.save_records([p for p in prepared[first:first + batch]
                            if isinstance(p, tuple)], actor="bench")
    end = cpu()
    print(f"{Path(fhir_iastm.__file__).parent.parent}: batch {batch}, "
          f"prepare {(mid - start) / n * 1000:.2f} ms/record, "
          f"store {(end - mid) / n * 1000:.2f} ms/record, load {os.getloadavg()[0]:.1f}")
    store.close()


if __name__ == "__main__":
    main()
