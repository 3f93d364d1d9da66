"""CPU of ``import_service.prepare`` per record (validate, hash, map, index), base vs this tree.

    .venv/bin/python benchmarks/bench_prepare.py [--records 1500] [--pairs 4] [--base DIR]

Generates ``--records`` sessions once (``gen_sessions.records``), then runs ``--pairs`` pairs of
child processes, one on the ``--base`` checkout (``PYTHONPATH``; default: none, only this tree is
measured) and one on this tree, alternating which goes first. Each child parses the bodies
outside the clock, prepares the first 50 to warm the code tables, then prepares all of them and
prints its CPU ms per record (``resource.getrusage``: CPU, not wall time, so that other load on
the machine skews the pairs less). Prints each pair, its ratio new / base, the median ratio and
the load average. ``--child FILE`` is the child itself; ``--profile`` makes the child loop for
py-spy. Numbers, not assertions.
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


def child(path: str, rounds: int) -> None:
    """Prepare every body in ``path`` (JSON Lines); print the CPU ms per record."""
    from fhir_iastm.config import Settings
    from fhir_iastm.import_service import prepare
    from fhir_iastm.service import mapping_settings

    settings = mapping_settings(Settings())
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for line in lines[:50]:
        prepare(json.loads(line), settings)
    best = float("inf")
    for _ in range(rounds):
        bodies = [json.loads(line) for line in lines]
        start = cpu()
        for body in bodies:
            prepare(body, settings)
        best = min(best, (cpu() - start) / len(bodies) * 1000)
    print(f"{best:.4f}")


def run_child(code: Path, path: str, rounds: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, __file__, "--child", path, "--rounds", str(rounds)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="best of, within a child")
    parser.add_argument("--base", type=Path, help="the checkout to compare with")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="child: 20 rounds, for py-spy")
    args = parser.parse_args()
    if args.child:
        child(args.child, 20 if args.profile else args.rounds)
        return
    sys.path.insert(0, str(HERE))
    from gen_sessions import records

    run = f"PR{time.time_ns() % 10**7}"
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
        out.writelines(json.dumps(r) + "\n" for r in records(args.records, run))
    print(f"{args.records} records, base {args.base}, new {ROOT}, "
          f"load {os.getloadavg()[0]:.2f}")
    ratios = []
    for k in range(args.pairs):
        order = [("new", ROOT), ("base", args.base)] if args.base else [("new", ROOT)]
        if k % 2:
            order.reverse()
        got = {name: run_child(code, out.name, args.rounds) for name, code in order}
        line = "  ".join(f"{name} {got[name]:.3f} ms/record" for name, _ in order)
        if args.base:
            ratios.append(got["new"] / got["base"])
            line += f"  new/base {ratios[-1]:.3f}"
        print(f"pair {k + 1}: {line}  load {os.getloadavg()[0]:.2f}")
    if ratios:
        print(f"median new/base {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f})")
    os.unlink(out.name)


if __name__ == "__main__":
    main()
