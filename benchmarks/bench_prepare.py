"""CPU of ``import_service.prepare`` per record (validate, hash, map, index), base vs this tree.

    .venv/bin/python benchmarks/bench_prepare.py [--records 500] [--pairs 12] [--base DIR]

Generates ``--records`` x (``--pairs`` + 1) sessions once (``gen_sessions.records``: a patient's
10 sessions in a row, 20 clinics, 200 therapists) and starts one child process on this tree and,
with ``--base``, one on that checkout (``PYTHONPATH``). Each child prepares the first
``--records`` to warm its tables and caches, then waits. A pair is one round of each child, the
order alternating from pair to pair: round k prepares the k-th next ``--records`` bodies (parsed
outside the clock; fresh patients, as in a long import) and gives its CPU ms per record
(``resource.getrusage``: CPU, not wall time). Both children stay alive, so a pair's two rounds
run seconds apart and see the same machine (its speed drifts by a third within an hour).
Prints each pair with its ratio new / base, the median
ratio and the load average. ``--child FILE`` is the child itself (for py-spy:
``yes | py-spy record ... -- python bench_prepare.py --child FILE``). Numbers, not assertions.
"""

# ruff: noqa: T201  -- a benchmark script reports on stdout
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def child(path: str, size: int) -> None:
    """Prepare the next ``size`` bodies of ``path`` (JSON Lines) for each line read from stdin;
    print the CPU ms per record of each round. The first ``size`` warm the caches."""
    from fhir_iastm.config import Settings
    from fhir_iastm.import_service import prepare
    from fhir_iastm.service import mapping_settings

    settings = mapping_settings(Settings())
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for line in lines[:size]:
        prepare(json.loads(line), settings)
    print("ready", flush=True)
    for k, _ in enumerate(sys.stdin, start=1):
        bodies = [json.loads(line) for line in lines[k * size:(k + 1) * size]]
        start = cpu()
        for body in bodies:
            prepare(body, settings)
        print(f"{(cpu() - start) / len(bodies) * 1000:.4f}", flush=True)


def start_child(code: Path, path: str, size: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(code))
    proc = subprocess.Popen([sys.executable, __file__, "--child", path, "--records", str(size)],
                            env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def round_of(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--base", type=Path, help="the checkout to compare with")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.records)
        return
    sys.path.insert(0, str(HERE))
    from gen_sessions import records

    run = f"PR{time.time_ns() % 10**7}"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
        out.writelines(json.dumps(r) + "\n"
                       for r in records(args.records * (args.pairs + 1), run))
    print(f"{args.records} records, base {args.base}, new {ROOT}, "
          f"load {os.getloadavg()[0]:.2f}")
    codes = {"new": ROOT, **({"base": args.base} if args.base else {})}
    procs = {name: start_child(code, out.name, args.records) for name, code in codes.items()}
    ratios = []
    try:
        for k in range(args.pairs):
            order = list(procs) if k % 2 == 0 else list(reversed(procs))
            got = {name: round_of(procs[name]) for name in order}
            line = "  ".join(f"{name} {got[name]:.3f} ms/record" for name in order)
            if args.base:
                ratios.append(got["new"] / got["base"])
                line += f"  new/base {ratios[-1]:.3f}"
            print(f"pair {k + 1}: {line}  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for proc in procs.values():
            proc.kill()
        os.unlink(out.name)
    if ratios:
        print(f"median new/base {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs)")


if __name__ == "__main__":
    main()
