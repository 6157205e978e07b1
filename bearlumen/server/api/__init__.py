"""HTTP routes. Handlers are thin: read the request, run one service call in a worker thread, answer JSON."""
