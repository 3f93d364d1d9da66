"""gunicorn settings of ``scripts/run`` (``gunicorn -c python:fhir_iastm.gunicorn_conf wsgi:app``).

The serving model and why: ``fhir_iastm.serving``. Sizes come from the environment: ``PORT``
(8000), ``WEB_CONCURRENCY`` (2 processes), ``IASTM_WEB_THREADS`` (16 threads each),
``IASTM_CLIENT_TIMEOUT_S`` (10 s per blocking socket read or write).
"""

from __future__ import annotations

import gc
import os
from typing import Any

from fhir_iastm.config import Settings

_settings = Settings.from_env()

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
wsgi_app = "wsgi:app"
worker_class = "fhir_iastm.serving.ThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = _settings.web_threads
# the arbiter restarts a worker whose main loop is silent this long (threads keep it beating)
timeout = 30
graceful_timeout = 10
keepalive = 5
# request line and header limits (gunicorn answers 414 / 431 / 400 as OperationOutcomes)
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
logger_class = "fhir_iastm.serving.JsonLogger"
accesslog = None
errorlog = "-"
# no control socket: one per instance would be needed, and nothing here uses it
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Once a worker has loaded the app: the objects built by then (the app, code tables,
    profiles, compiled schemas: about 290,000) live as long as the process, so they are frozen
    (``gc.freeze``) after one last collection. The collector's full passes then skip them:
    2.5–8 ms instead of 86–115 ms with every thread of the process stopped, every few seconds
    under load (docs/performance.md#gc)."""
    gc.collect()
    gc.freeze()
    worker.log.info("objects frozen for the garbage collector: %s", gc.get_freeze_count())
