"""The self-hosted Bear Lumen service (``pip install 'bearlumen[server]'``).

    bearlumen serve                      # http://127.0.0.1:8787, SQLite under ~/.bearlumen
    bearlumen serve --database-url postgresql://user@host/db

Layout (one job per module):

- ``app``: ``create_app(database_url)``, the FastAPI application (ready without lifespan events).
- ``api/``: HTTP routes, thin: read the request, run one service call in a worker thread, answer JSON.
- ``services/``: end users and subscriptions.
- ``usage/``: metering: event validation (``validate``), idempotent ingestion (``ingest``, ``bulk``),
  hourly rollups (``rollups``), exact totals over any range (``totals``), answers (``reports``, ``events``).
- ``db``, ``schema``, ``migrate`` (+ ``migrations/``): storage on SQLite or PostgreSQL.
- ``keys``: tenants and API keys (``create_api_key`` for scripts and embedded mode).
- ``errors``, ``jsonio``, ``fields``, ``timefmt``, ``money``, ``ids``: the wire format.
- ``middleware`` (request ids, access log, metrics, last-resort 500), ``gate`` (key, rate limit and body
  limits before the body is read), ``ratelimit``, ``metrics``, ``openapi`` (the document made true): the
  request plumbing.
"""
