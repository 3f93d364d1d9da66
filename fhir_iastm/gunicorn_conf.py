"""gunicorn settings of ``scripts/run`` (``gunicorn -c python:fhir_iastm.gunicorn_conf wsgi:app``).

The serving model and why: ``fhir_iastm.serving``. Sizes come from the environment: ``PORT``
(8000), ``WEB_CONCURRENCY`` (2 processes), ``IASTM_WEB_THREADS`` (16 threads each),
``IASTM_CLIENT_TIMEOUT_S`` (10 s per blocking socket read or write).
"""

from __future__ import annotations

import os

from fhir_iastm.config import Settings
from fhir_iastm.serving import freeze_startup_objects

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
# the objects a worker builds at start are frozen for the garbage collector (docs/performance.md#gc)
post_worker_init = freeze_startup_objects
