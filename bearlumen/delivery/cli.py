"""``bearlumen spool``: see and settle what the exporter could not deliver.

    bearlumen spool list  [--spool PATH] [--json]          # queued count, and every quarantined event
    bearlumen spool retry [KEY ...] [--all] [--spool PATH] # back into the queue (same idempotency keys),
                          [--send/--no-send]               # then delivered now (needs an API key)
    bearlumen spool drop  KEY ... | --all [--spool PATH] --yes   # delete quarantined events for good

``--spool`` (or ``$BEARLUMEN_SPOOL``) names the spool file; without it the default spool of
``$BEARLUMEN_API_KEY`` and ``$BEARLUMEN_BASE_URL`` (the one ``bearlumen.instrument()`` uses) is opened.
A resend reuses the event's idempotency key, so an event the service did record after all is answered
"duplicate", never counted twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Optional, Sequence

import click

__all__ = ["spool"]


def _client(api_key: Optional[str], base_url: Optional[str]) -> Any:
    import bearlumen

    return bearlumen.Client(api_key=api_key, base_url=base_url)


def _spool_path(path: Optional[str], api_key: Optional[str], base_url: Optional[str]) -> str:
    if path:
        return path
    from bearlumen.delivery.spool import default_spool_path
    from bearlumen.delivery.transport import client_config

    try:
        config = client_config(_client(api_key, base_url))
    except Exception as exc:
        raise click.UsageError(f"give --spool PATH, or an API key for the default spool ({exc})") from None
    if config is None:
        raise click.UsageError("give --spool PATH")
    return default_spool_path(config.base_url, config.api_key)


def _open(path: str) -> Any:
    from bearlumen.delivery.spool import Spool

    if not os.path.exists(path):
        raise click.ClickException(f"no spool at {path}")
    return Spool(path)


def _common(func: Any) -> Any:
    func = click.option("--base-url", envvar="BEARLUMEN_BASE_URL", default=None, help="Service URL.")(func)
    func = click.option("--api-key", envvar="BEARLUMEN_API_KEY", default=None, help="API key.")(func)
    return click.option(
        "--spool", "spool_path", envvar="BEARLUMEN_SPOOL", default=None, help="The spool file (.db)."
    )(func)


@click.group()
def spool() -> None:
    """Inspect the delivery spool: queued and quarantined usage events."""


@spool.command("list")
@_common
@click.option("--json", "as_json", is_flag=True, help="One JSON object per quarantined event.")
def spool_list(
    spool_path: Optional[str], api_key: Optional[str], base_url: Optional[str], as_json: bool
) -> None:
    """Show how many events wait for delivery, and every quarantined event with its reason."""
    path = _spool_path(spool_path, api_key, base_url)
    store = _open(path)
    try:
        pending, quarantined = store.pending(), store.quarantined(limit=1_000_000)
    finally:
        store.close()
    if as_json:
        for key, code, message, at, body in quarantined:
            click.echo(
                json.dumps(
                    {
                        "idempotency_key": key,
                        "code": code,
                        "message": message,
                        "at": at,
                        "event": json.loads(body),
                    }
                )
            )
        return
    click.echo(f"spool {path}: {pending} event(s) queued, {len(quarantined)} quarantined")
    for key, code, message, at, _ in quarantined:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        click.echo(f"{key}\t{code}\t{stamp}\t{message}")


@spool.command("retry")
@_common
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every quarantined event.")
@click.option("--send/--no-send", default=True, show_default=True, help="Deliver the queue now.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the delivery.")
def spool_retry(
    spool_path: Optional[str],
    api_key: Optional[str],
    base_url: Optional[str],
    keys: Sequence[str],
    everything: bool,
    send: bool,
    timeout: float,
) -> None:
    """Put quarantined events back in the queue (same keys) and deliver them."""
    if not keys and not everything:
        raise click.UsageError("name the events (idempotency keys) or pass --all")
    path = _spool_path(spool_path, api_key, base_url)
    store = _open(path)
    try:
        moved = store.requeue(None if everything else list(keys))
    finally:
        store.close()
    click.echo(f"{moved} event(s) back in the queue of {path}")
    if not send:
        return
    from bearlumen.delivery.exporter import Exporter
    from bearlumen.metering.pricing import PriceBook

    exporter = Exporter(_client(api_key, base_url), PriceBook.from_config(None), spool=path)
    try:
        result = exporter.flush(timeout)
        stats = exporter.stats()
    finally:
        exporter.shutdown(1.0)
    click.echo(
        f"delivered {stats['delivered']}, duplicates {stats['duplicates']}, quarantined again "
        f"{stats['quarantined']}, still queued {stats['pending']}"
    )
    if not result:
        sys.exit(1)


@spool.command("drop")
@_common
@click.argument("keys", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every quarantined event.")
@click.option("--yes", is_flag=True, help="Confirm: these events are deleted for good (never billed).")
def spool_drop(
    spool_path: Optional[str],
    api_key: Optional[str],
    base_url: Optional[str],
    keys: Sequence[str],
    everything: bool,
    yes: bool,
) -> None:
    """Delete quarantined events for good."""
    if not keys and not everything:
        raise click.UsageError("name the events (idempotency keys) or pass --all")
    if not yes:
        raise click.UsageError("dropping events loses their usage for good: pass --yes to confirm")
    path = _spool_path(spool_path, api_key, base_url)
    store = _open(path)
    try:
        dropped = store.discard(None if everything else list(keys))
    finally:
        store.close()
    click.echo(f"{dropped} quarantined event(s) dropped from {path}")
