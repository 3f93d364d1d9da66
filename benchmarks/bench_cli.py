"""Peak memory and time of the CLI at volume: ``map`` and ``validate`` of N documents, against the
same commands on one document (the fixed cost: interpreter, models, profiles) in the same run.

    .venv/bin/python benchmarks/bench_cli.py [--records 10000]

Writes N distinct records (the good examples with fresh session ids) as JSON Lines, maps them to
Bundles with ``fhir-iastm map`` and validates the Bundles with ``fhir-iastm validate``, each under
``/usr/bin/time -v``; prints the maximum resident set size and the wall time of each, and the
ratio of the N-document peak to the one-document peak (constant memory: close to 1).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.strategies import example  # noqa: E402

NAMES = ["good-01", "good-02", "good-03", "good-04", "good-05", "good-06", "good-08"]


def write_records(path: Path, n: int) -> None:
    with path.open("w") as out:
        for i in range(n):
            record = example(NAMES[i % len(NAMES)])
            record["session_id"] = f"BENCH-{i:06d}"
            out.write(json.dumps(record) + "\n")


def timed(args: list[str], stdout: Path) -> tuple[float, float]:
    """(max RSS MB, wall seconds) of one CLI run; its stdout goes to ``stdout``."""
    with stdout.open("wb") as out:
        done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "fhir_iastm", *args],
                              stdout=out, stderr=subprocess.PIPE, cwd=ROOT, check=False)
    err = done.stderr.decode()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    assert wall, err[-2000:]
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    summary = [line for line in err.splitlines() if line.startswith(args[0] + ":")]
    print(json.dumps({"command": " ".join(args[:1]), "exit": done.returncode,
                      "max_rss_mb": round(rss / 1024, 1), "seconds": round(seconds, 1),
                      "summary": summary[-1] if summary else None}))
    return rss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    results = {}
    for n in (1, args.records):
        records, bundles = tmp / f"records-{n}.ndjson", tmp / f"bundles-{n}.ndjson"
        write_records(records, n)
        results[("map", n)] = timed(["map", str(records)], bundles)
        if n == 1:  # one record maps to one pretty Bundle: make it one line
            bundles.write_text(json.dumps(json.loads(bundles.read_text())) + "\n")
        results[("validate", n)] = timed(["validate", str(bundles)], tmp / f"outcomes-{n}")
    for command in ("map", "validate"):
        one, many = results[(command, 1)], results[(command, args.records)]
        print(f"{command}: {args.records} documents peak {many[0]:.0f} MB in {many[1]:.0f} s; "
              f"one document {one[0]:.0f} MB; ratio {many[0] / one[0]:.2f}")


if __name__ == "__main__":
    main()
