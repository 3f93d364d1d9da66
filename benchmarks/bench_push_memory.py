"""Peak memory of ``fhir-iastm push`` at volume: N records against one record, in the same run.

    .venv/bin/python benchmarks/bench_push_memory.py [--records 10000] [--capabilities URL]
                                                     [--code DIR]

The target is a local stand-in FHIR server on 127.0.0.1 (a thread of this process): it answers
``metadata`` with a real server's CapabilityStatement (read once from ``--capabilities``, the
shared HAPI by default), every search with an empty searchset and every transaction with
``201 Created`` for each entry — so the figure is the CLI's own memory (reading, mapping, pushing,
printing), not a server's, and 10,000 sessions are not written to the shared HAPI. Each push runs
under ``/usr/bin/time -v``; ``--code DIR`` runs another checkout's ``fhir_iastm`` (e.g. main's,
for the before figure) with the same interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_cli import write_records  # noqa: E402


def stand_in(capabilities: dict[str, Any]) -> ThreadingHTTPServer:
    """The stand-in server, started; its base is ``http://127.0.0.1:<port>/fhir``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0].endswith("/metadata"):
                self._send(capabilities)
            else:
                self._send({"resourceType": "Bundle", "type": "searchset", "total": 0})

        def do_POST(self) -> None:  # noqa: N802
            sent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            entries = []
            for n, entry in enumerate(sent.get("entry") or []):
                rtype = entry["request"]["url"].split("?")[0].split("/")[0]
                entries.append({"response": {"status": "201 Created",
                                             "location": f"{rtype}/x{n}/_history/1"}})
            self._send({"resourceType": "Bundle", "type": "transaction-response",
                        "entry": entries})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def push(records: Path, base: str, code: Path | None) -> dict[str, Any]:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "fhir_iastm", "push",
                           "--server", base, str(records)], capture_output=True,
                          cwd=code or ROOT, env=env, check=False)
    err = done.stderr.decode()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1))  # type: ignore[union-attr]
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    assert wall, err[-2000:]
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    statuses: dict[str, int] = {}
    for line in done.stdout.decode().splitlines():
        status = json.loads(line)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    return {"exit": done.returncode, "max_rss_mb": round(rss / 1024, 1),
            "seconds": round(seconds, 1), "results": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--capabilities", default="http://127.0.0.1:18090/fhir")
    parser.add_argument("--code", type=Path, default=None,
                        help="a checkout whose fhir_iastm to run (default: this one)")
    args = parser.parse_args()
    capabilities = requests.get(args.capabilities + "/metadata", timeout=60,
                                headers={"Accept": "application/fhir+json"}).json()
    server = stand_in(capabilities)
    base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    tmp = Path(tempfile.mkdtemp(prefix="bench-push-"))
    found = {}
    for n in (1, args.records):
        records = tmp / f"records-{n}.ndjson"
        write_records(records, n)
        found[n] = push(records, base, args.code)
        print(json.dumps({"records": n, **found[n]}))
    one, many = found[1]["max_rss_mb"], found[args.records]["max_rss_mb"]
    print(f"push: {args.records} records peak {many:.0f} MB in {found[args.records]['seconds']:.0f}"
          f" s; one record {one:.0f} MB; ratio {many / one:.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
