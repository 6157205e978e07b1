"""A WSGI app for the gunicorn test: `gunicorn --preload -w 3 tests.delivery.gunicorn_app:app`.

Configured by environment: BL_TEST_CONFIG (JSON: api_key, base_url, spool, prefix, calls, options).
With --preload, importing this module (in the master, before the workers fork) instruments the process
and emits `calls` events there (in flight when the workers are forked). Each request `GET /emit?id=X`
emits one event with response id X from the worker that serves it, and answers that worker's pid.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, List, Tuple
from urllib.parse import parse_qs

import bearlumen
from bearlumen.metering.record import emit
from tests.delivery.producer import emit_calls, llm_call

CONFIG = json.loads(os.environ["BL_TEST_CONFIG"])

bearlumen.instrument(
    bearlumen.Client(api_key=CONFIG["api_key"], base_url=CONFIG["base_url"]),
    integrations=[],
    spool=CONFIG["spool"],
    **CONFIG.get("options", {}),
)
emit_calls(CONFIG["prefix"], int(CONFIG.get("calls", 0)))


def app(environ: Any, start_response: Callable[[str, List[Tuple[str, str]]], Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    response_id = query.get("id", [""])[0]
    if response_id:
        call = llm_call("unused", 0)
        call.response_id = response_id
        emit(call)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
