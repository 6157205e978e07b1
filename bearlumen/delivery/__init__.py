"""Delivery: getting every usage event to the service exactly once (issue 6).

``bearlumen.instrument()`` starts an :class:`~bearlumen.delivery.exporter.Exporter`; nothing here is
needed directly. Modules, one idea each:

    exporter.py   the Exporter: caller path, writer and sender threads, flush, shutdown, stats
    writing.py    calls -> built events -> the store (and a spool deleted, full, or drained)
    sending.py    one batch -> one request, and what each answer does (retry, split, quarantine, wait)
    results.py    FlushResult: what a flush that did not fully succeed reports
    signals.py    SIGTERM: the buffer goes to the spool, then the process goes as before
    cli.py        ``bearlumen spool list / retry / drop``: the queue and the quarantine
    options.py    DeliveryOptions: every tunable and its default
    store.py      the queue contract (Row, Store) shared by the two stores below
    spool.py      the durable SQLite spool (WAL, leases for several processes, size caps)
    memory.py     the in-memory store (spool=False)
    backoff.py    exponential backoff with jitter, Retry-After
    transport.py  one batch -> usage.record_batch, on a client without SDK retries (fork-aware)
    forking.py    os.register_at_fork, atexit, multiprocessing / billiard (celery) worker exits

Guarantees and bounds (the defaults; see options.py to change them):

- The caller's thread only appends the call to a bounded deque (well under a microsecond; see
  ``benchmarks/delivery.py``): no pricing, JSON or I/O. A writer thread prices it, fixes its idempotency
  key and commits it to the spool within ``commit_interval`` (50 ms) plus pricing time; ``strict=True``
  makes ``submit`` return only once committed. A sender thread sends batches of up to 1000 about once a
  second and deletes them from the spool only once the service acknowledged them.
- Retries never give up while the process lives: network errors, timeouts, 408, 429 and 5xx are retried
  with the same idempotency keys after an exponential backoff with jitter (0.5 s doubling to 30 s) or the
  service's Retry-After. A resend after a lost answer is answered "duplicate", never counted twice.
  Events the service refuses as invalid (400 ``invalid_batch``), and one event that alone keeps
  getting 5xx while the rest is delivered, are moved to the spool's quarantine (``quarantined``,
  logged, ``bearlumen spool list / retry / drop``); the rest of the batch goes. 401/403/404 keep the
  events spooled (a corrected key delivers them later).
- Spool file: ``$BEARLUMEN_SPOOL_DIR/<hash>.db`` or ``~/.bearlumen/spool/<hash>.db``, the hash of the
  service URL and the key's display prefix (never the key); ``spool="path.db"`` picks one,
  ``spool=False`` keeps events in memory only (lost at a crash). Directory 0700, file 0600. After a
  crash, ``kill -9`` or a long outage, the next process on the same spool delivers what is left.
- Several processes may share a spool (gunicorn workers do by default): rows are claimed under a lease
  (owner = host + pid + token, 60 s, renewed per attempt), so two live processes never send the same
  rows; rows of a dead owner (its pid gone) are taken over at once, others when their lease ends.
- Memory is bounded whatever the outage: at most ``max_queue_size`` (10,000) calls wait in memory for the
  writer, and the sender holds one batch; the backlog is on disk. The spool holds at most
  ``max_spool_events`` (1,000,000) events / ``max_spool_bytes`` (512 MiB); beyond, new events are dropped
  (drop-newest: the older events, already promised, are kept), counted (``dropped_spool_full``) and
  warned about (at most once a minute). ``spool=False``: ``max_memory_events`` (100,000), then
  ``dropped_queue_full``. ``bearlumen.stats()`` shows every counter.
- ``bearlumen.flush(timeout)`` waits until everything emitted before it is acknowledged (with a shared
  spool: everything spooled before it, by any process) or the timeout (``None``: 60 s); never forever.
- Exit: an ``atexit`` hook writes the buffer to the spool and delivers within ``shutdown_timeout``
  (5 s); while the service is failing it only secures the events in the spool and leaves at once.
- Fork: the child starts empty (new buffer, locks, threads on its first event, spool connection, HTTP
  connection pool); the parent keeps and delivers its own events. gunicorn (with or without
  ``--preload``): nothing to do; workers flush at exit. multiprocessing (fork) and celery's prefork
  pool (billiard): the worker's exit hooks are used (billiard's ``Worker._do_exit`` is wrapped), since
  those workers leave with ``os._exit()``. A worker killed with SIGKILL (gunicorn's timeout) loses only
  what it had not yet written to the spool (``strict=True`` closes that window). After a raw
  ``os.fork()`` whose child ends with ``os._exit()``, call ``bearlumen.flush()`` first.
- ``sync=True`` (serverless, scripts): each event is spooled and sent on the caller's thread before
  ``submit`` returns (one attempt; while a backoff is in force it is only spooled); failures leave it to
  the background sender. Errors never reach the application.
"""
