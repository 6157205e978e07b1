"""Metering: event validation, idempotent ingestion with hourly rollups, exact totals over any range."""
