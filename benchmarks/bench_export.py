"""Benchmark: ``fhir-iastm export`` of N stored sessions as NDJSON — throughput and peak RSS.

docs/performance.md#targets target: 100,000 sessions with peak RSS < 200 MB (the export streams:
keyset pages of
records, one Bundle mapped and written at a time). The baseline in the same run is the peak RSS of
a bare ``fhir-iastm --version`` (interpreter + imports), so the report shows what the data adds.

    .venv/bin/python benchmarks/bench_export.py [N]        # default 100000
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_iastm.records import load_record  # noqa: E402
from fhir_iastm.storage import Store  # noqa: E402

CLI = str(ROOT / ".venv" / "bin" / "fhir-iastm")
EXAMPLES = sorted((ROOT / "tests/data/examples").glob("good-*.json"))


def fill(url: str, n: int) -> float:
    """Store n distinct sessions (the examples with new session ids); returns seconds."""
    store = Store(url)
    store.migrate()
    bases = [json.loads(p.read_text()) for p in EXAMPLES]
    started = time.perf_counter()
    for i in range(n):
        raw = dict(bases[i % len(bases)], session_id=f"EXP-{i:07d}")
        store.save_record(load_record(raw), raw, actor="bench")
    store.close()
    return time.perf_counter() - started


def _peak_kb(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, from /proc; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("VmHWM:")), 0)


def run_measured(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, stdout lines) of a child process.

    The peak is the child's own VmHWM, sampled until it exits (getrusage's RUSAGE_CHILDREN would
    also count the pre-exec copy of this 200 MB benchmark process)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _peak_kb(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    lines = sum(1 for _ in proc.stdout)  # type: ignore[union-attr]
    peak = max(peak, _peak_kb(proc.pid))
    code = proc.wait()
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"{args} failed with {code}")
    return time.perf_counter() - started, peak / 1024, lines


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/export.db"
        print(f"storing {n} sessions ...", file=sys.stderr)
        fill_s = fill(url, n)
        _, base_rss, _ = run_measured([CLI, "--version"])
        seconds, peak_rss, lines = run_measured([CLI, "export", "--database-url", url])
    print(f"stored:   {n} sessions in {fill_s:.1f} s ({n / fill_s:.0f} sessions/s)")
    print(f"baseline: `fhir-iastm --version` peak RSS {base_rss:.0f} MB")
    print(f"export:   {lines} resources, {n / seconds:.0f} sessions/s, {lines / seconds:.0f} "
          f"resources/s, peak RSS {peak_rss:.0f} MB (target < 200 MB)")


if __name__ == "__main__":
    main()
