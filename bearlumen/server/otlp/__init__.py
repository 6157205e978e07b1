"""OTLP/HTTP traces in: model-call spans of OpenTelemetry GenAI instrumentations billed as usage events.

``wire`` reads the request and writes the OTLP answers, ``spans`` maps one span to the call it describes,
``export`` turns a request into stored events through the REST API's ingest path.
"""
