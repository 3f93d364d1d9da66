"""CPU of ``POST /api/sessions`` in process with a module flag off and on, in alternating blocks
of the same run (so both meet the same load on a shared machine).

    .venv/bin/python benchmarks/bench_flag_ab.py fhir_iastm.storage.driver FAST [--posts 1500]
        [--block 25]

Through Flask's test client on a fresh SQLite store (routing, auth, validation, mapping, the
save with its FHIR resources and search index, the request log): 200 generated records first,
unrecorded, then ``--posts`` more, ``--block`` with the flag off, the next ``--block`` with it on,
and so on. Prints the request thread's CPU per POST each way and the ratio (the background
checkpoint thread is not counted: it is the same both ways). Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_sessions import records  # noqa: E402 — a sibling script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("flag")
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--block", type=int, default=25)
    args = parser.parse_args()

    from fhir_iastm.api import create_app
    from fhir_iastm.config import Settings

    logging.disable(logging.INFO)
    module = importlib.import_module(args.module)
    folder = Path(tempfile.mkdtemp())
    try:
        app = create_app(Settings.from_env({
            "IASTM_DATABASE_URL": f"sqlite:///{folder}/post.db",
            "IASTM_API_TOKENS": "bench:read+write"}))
        client = app.test_client()
        headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        bodies = [json.dumps(b).encode()
                  for b in records(args.posts + 200, f"AB{time.time_ns() % 10**7}")]
        for body in bodies[:200]:
            client.post("/api/sessions", data=body, headers=headers)
        cpu, count, on = {False: 0.0, True: 0.0}, {False: 0, True: 0}, False
        for start in range(200, len(bodies), args.block):
            setattr(module, args.flag, on)
            block = bodies[start:start + args.block]
            began = time.thread_time()
            for body in block:
                answer = client.post("/api/sessions", data=body, headers=headers)
                if answer.status_code != 201:
                    raise SystemExit(f"POST answered {answer.status_code}: {answer.data[:300]!r}")
            cpu[on] += time.thread_time() - began
            count[on] += len(block)
            on = not on
        off_ms, on_ms = (cpu[k] / count[k] * 1000 for k in (False, True))
        print(f"{args.module}.{args.flag}: off {off_ms:.3f} ms CPU per POST, on {on_ms:.3f}, "
              f"on/off {on_ms / off_ms:.3f} ({args.posts} POSTs, blocks of {args.block})")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
