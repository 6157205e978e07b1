"""The ``bearlumen`` command.

    bearlumen serve [--host H] [--port P] [--workers N] [--database-url URL] [--rate-limit N]
                    [--bootstrap-key-file F] [--metrics] [--body-timeout S] [--no-access-log]
    bearlumen keys create --tenant NAME      # prints only the key, for scripts
    bearlumen keys list | keys revoke KEY_ID_OR_PREFIX
    bearlumen migrate
    bearlumen reprice --since DATE --until DATE [--apply]   # audit stored costs (bearlumen/reprice.py)
    bearlumen prune --before DATE [--drop-rollups] [--tenant T] [--dry-run]   # retention
    bearlumen export --since DATE --until DATE --format csv|jsonl|parquet [--output F] [--tenant T]
    bearlumen spool list | spool retry KEY.. | spool drop KEY..  # the delivery spool (delivery/cli.py)

``main`` is a plain click group: add commands with ``@main.command()``. The service's modules load inside
each command, so ``bearlumen --help`` stays fast and the core SDK never imports them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

__all__ = ["main"]

_DB_HELP = (
    "SQLAlchemy URL: sqlite:///path.db or postgresql://user:pass@host/db. "
    "Default: $BEARLUMEN_HOME/bearlumen.db (BEARLUMEN_HOME defaults to ~/.bearlumen)."
)


def _database_url(value: Optional[str]) -> str:
    from bearlumen.server.dburl import default_database_url, normalize_database_url

    return normalize_database_url(value) if value else default_database_url()


def _database_option(func: Any) -> Any:
    return click.option("--database-url", envvar="BEARLUMEN_DATABASE_URL", show_envvar=True, help=_DB_HELP)(
        func
    )


@click.group()
@click.version_option(package_name="bearlumen")
def main() -> None:
    """Bear Lumen: meter LLM spend per customer, agent and workflow."""


@main.command()
@click.option("--host", envvar="BEARLUMEN_HOST", show_envvar=True, default="127.0.0.1", show_default=True)
@click.option("--port", envvar="BEARLUMEN_PORT", show_envvar=True, default=8787, show_default=True, type=int)
@click.option(
    "--workers",
    envvar="BEARLUMEN_WORKERS",
    show_envvar=True,
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (uvicorn's supervisor) sharing the port; for PostgreSQL, about one per core.",
)
@_database_option
@click.option(
    "--rate-limit",
    envvar="BEARLUMEN_RATE_LIMIT",
    show_envvar=True,
    type=float,
    default=None,
    help="Requests per second allowed per API key (burst of the same size), in each process. Off by default.",
)
@click.option(
    "--bootstrap-key-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="When the first key is created (empty database), also write it to this file (mode 0600).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stdout (never a key or a query string).",
)
@click.option(
    "--metrics/--no-metrics",
    envvar="BEARLUMEN_METRICS",
    default=False,
    show_default=True,
    help="Serve Prometheus metrics at /metrics, without authentication: for the operator's scraper.",
)
@click.option(
    "--body-timeout",
    envvar="BEARLUMEN_BODY_TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds a request body may take to arrive (408 after).",
)
def serve(
    host: str,
    port: int,
    workers: int,
    database_url: Optional[str],
    rate_limit: Optional[float],
    bootstrap_key_file: Optional[str],
    log_level: str,
    access_log: bool,
    metrics: bool,
    body_timeout: float,
) -> None:
    """Run the service (migrations are applied on start). Stops cleanly on SIGINT / SIGTERM."""
    from bearlumen.server.app import create_app
    from bearlumen.server.dburl import display_url
    from bearlumen.server.workers import configure_access_log, run, settings_for

    url = _database_url(database_url)
    if rate_limit is not None and rate_limit <= 0:
        rate_limit = None  # 0 means off, as when unset
    click.echo(f"Database: {display_url(url)}")
    settings = settings_for(
        url, rate_limit=rate_limit, metrics=metrics, body_timeout=body_timeout, access_log=access_log
    )
    app = create_app(url, rate_limit=rate_limit, metrics=metrics, body_timeout=body_timeout)
    try:
        _bootstrap_key(app.state.db, bootstrap_key_file)
        if workers > 1:
            app.state.close()  # the workers build their own apps (and connection pools)
        else:
            configure_access_log(access_log)
        plural = f" with {workers} worker processes" if workers > 1 else ""
        click.echo(f"Bear Lumen starting on http://{host}:{port}{plural}")
        sys.stdout.flush()
        # SIGINT / SIGTERM: stop accepting, let in-flight requests finish, exit 0
        run(app, settings, host=host, port=port, workers=workers, log_level=log_level)
    finally:
        app.state.close()
    click.echo("Bear Lumen stopped.")


def _bootstrap_key(db: Any, key_file: Optional[str]) -> None:
    """On an empty database, create tenant 'default' with one key and show it once."""
    from bearlumen.server.keys import bootstrap_key

    key = bootstrap_key(db)
    if key is None:
        return
    click.echo("Created the first API key (tenant 'default'). It is shown only once; store it now:")
    click.echo(f"    {key}")
    if key_file:
        _write_private(key_file, key + "\n")
        click.echo(f"The key was also written to {key_file} (mode 0600).")


def _write_private(path: str, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # also when the file already existed with wider permissions
        handle.write(content)


@main.command()
@_database_option
def migrate(database_url: Optional[str]) -> None:
    """Apply pending schema migrations (a no-op when up to date)."""
    from bearlumen.server.db import Database
    from bearlumen.server.dburl import display_url
    from bearlumen.server.migrate import upgrade

    url = _database_url(database_url)
    db = Database(url)
    try:
        revision = upgrade(db)
    finally:
        db.close()
    click.echo(f"{display_url(url)} is at schema revision {revision} (latest).")


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--tenant", required=True, help="Tenant (organization) name; created if missing.")
@_database_option
def keys_create(tenant: str, database_url: Optional[str]) -> None:
    """Create a key and print it (only the key, on stdout)."""
    from bearlumen.server.keys import create_api_key

    try:
        key = create_api_key(_database_url(database_url), tenant)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tenant") from None
    click.echo(key)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@_database_option
def keys_list(tenant: Optional[str], database_url: Optional[str]) -> None:
    """List keys (id, tenant, display prefix, created, status); never the keys themselves."""
    from bearlumen.server.keys import list_keys
    from bearlumen.server.timefmt import format_ts

    rows = _with_db(database_url, lambda db: db.read(lambda conn: list_keys(conn, tenant)))
    click.echo(f"{'ID':<30} {'TENANT':<20} {'PREFIX':<14} {'CREATED':<28} STATUS")
    for k in rows:
        status = "active" if k.revoked_us is None else f"revoked {format_ts(k.revoked_us)}"
        click.echo(f"{k.id:<30} {k.tenant:<20} {k.prefix:<14} {format_ts(k.created_us):<28} {status}")


@keys.command("revoke")
@click.argument("key_id_or_prefix")
@_database_option
def keys_revoke(key_id_or_prefix: str, database_url: Optional[str]) -> None:
    """Revoke a key by id (key_...) or display prefix (blm_...). Takes effect on the next request."""
    from bearlumen.server.keys import revoke_key

    revoked = _with_db(database_url, lambda db: db.write(lambda conn: revoke_key(conn, key_id_or_prefix)))
    if revoked is None:
        raise click.ClickException(f"No single key matches {key_id_or_prefix!r}; see `bearlumen keys list`.")
    click.echo(f"Revoked {revoked.id} ({revoked.prefix}..., tenant {revoked.tenant}).")


def _with_db(database_url: Optional[str], fn: Any) -> Any:
    from bearlumen.server.db import Database
    from bearlumen.server.migrate import upgrade

    db = Database(_database_url(database_url))
    try:
        upgrade(db)
        return fn(db)
    finally:
        db.close()


@main.command()
@click.option("--since", default=None, help="Start (inclusive), ISO 8601 or a date. Default: 30 days ago.")
@click.option("--until", default=None, help="End (exclusive), ISO 8601 or a date. Default: now.")
@click.option(
    "--base-url",
    envvar="BEARLUMEN_BASE_URL",
    show_envvar=True,
    default=None,
    help="Service URL, or a database URL for the embedded mode. Default: http://127.0.0.1:8787.",
)
@click.option(
    "--api-key", envvar="BEARLUMEN_API_KEY", show_envvar=True, default=None, help="API key (required)."
)
def report(
    since: Optional[str], until: Optional[str], base_url: Optional[str], api_key: Optional[str]
) -> None:
    """Print cost by agent and by workflow, as the service sums it.

    Reads the API key from --api-key or BEARLUMEN_API_KEY (required) and the service from --base-url or
    BEARLUMEN_BASE_URL (default http://127.0.0.1:8787, where `bearlumen serve` listens).
    """
    from bearlumen import AuthenticationError, BearLumenError, NetworkError
    from bearlumen._client import Client
    from bearlumen.report import default_range, render_report

    start, end = default_range()
    try:
        with Client(api_key=api_key, base_url=base_url) as client:
            click.echo(render_report(client, since or start, until or end))
    except AuthenticationError as error:
        raise click.ClickException(_key_fix(error)) from None
    except NetworkError as error:
        url = base_url or "http://127.0.0.1:8787"
        raise click.ClickException(
            f"{error.message}\nNo Bear Lumen service answered at {url}: start one with `bearlumen serve`, "
            "or point --base-url / BEARLUMEN_BASE_URL at yours."
        ) from None
    except BearLumenError as error:
        raise click.ClickException(error.message) from None


def _key_fix(error: Any) -> str:
    if error.code == "missing_api_key":
        return (
            "No API key: pass --api-key or set BEARLUMEN_API_KEY. Create one with "
            "`bearlumen keys create --tenant NAME` on the machine that runs the service "
            "(`bearlumen serve` also prints the first key when it starts on an empty database)."
        )
    return f"{error.message}\nThe service rejected the key: check --api-key / BEARLUMEN_API_KEY."


@main.command()
@click.option("--since", required=True, help="Start (inclusive), ISO 8601 date or date-time (UTC).")
@click.option("--until", required=True, help="End (exclusive), ISO 8601 date or date-time (UTC).")
@click.option("--tenant", default=None, help="Only this tenant's events (default: every tenant).")
@click.option("--apply", is_flag=True, default=False, help="Store the recomputed costs.")
@click.option(
    "--pricing-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="User aliases, prices and hosts (as in instrument(pricing=...)). Default: $BEARLUMEN_PRICING_FILE.",
)
@_database_option
def reprice(
    since: str,
    until: str,
    tenant: Optional[str],
    apply: bool,
    pricing_file: Optional[str],
    database_url: Optional[str],
) -> None:
    """Recompute stored costs from the stored token buckets with the installed prices; list the changes.

    Exits with status 1 when some cost would change and --apply was not given (for CI audits)."""
    import json

    from bearlumen.metering.pricing import PriceBook
    from bearlumen.reprice import render
    from bearlumen.reprice import reprice as run_reprice
    from bearlumen.server.timefmt import parse_ts

    config = None
    if pricing_file is not None:
        with open(pricing_file, encoding="utf-8") as handle:
            config = json.load(handle)
    prices = PriceBook.from_config(config)
    start, end = parse_ts(since), parse_ts(until)
    if start is None:
        raise click.BadParameter("not an ISO 8601 date or date-time", param_hint="--since")
    if end is None:
        raise click.BadParameter("not an ISO 8601 date or date-time", param_hint="--until")
    result = _with_db(
        database_url, lambda db: run_reprice(db, start, end, tenant=tenant, prices=prices, apply=apply)
    )
    click.echo(render(result))
    if result.differences and not apply:
        sys.exit(1)


@main.command()
@click.option("--before", required=True, help="Remove events before this ISO 8601 date or whole hour (UTC).")
@click.option(
    "--keep-rollups/--drop-rollups",
    default=True,
    show_default=True,
    help="Keep the hourly rollups, so reports over pruned hours stay the same; or delete them too.",
)
@click.option("--tenant", default=None, help="Only this tenant's events (default: every tenant).")
@click.option("--dry-run", is_flag=True, default=False, help="Count what would go; change nothing.")
@_database_option
def prune(
    before: str, keep_rollups: bool, tenant: Optional[str], dry_run: bool, database_url: Optional[str]
) -> None:
    """Delete raw usage events older than --before (drops whole months on PostgreSQL).

    Idempotency keys are kept: a late retry of a pruned event is not counted again."""
    from bearlumen.server.timefmt import HOUR_US, parse_ts
    from bearlumen.server.usage.prune import prune as run_prune

    cutoff = parse_ts(before)
    if cutoff is None or cutoff % HOUR_US:
        raise click.BadParameter("not an ISO 8601 date or whole hour (UTC)", param_hint="--before")
    try:
        result = _with_db(
            database_url,
            lambda db: run_prune(db, cutoff, tenant=tenant, keep_rollups=keep_rollups, dry_run=dry_run),
        )
    except LookupError as error:
        raise click.ClickException(str(error)) from None
    verb = "Would remove" if dry_run else "Removed"
    click.echo(f"{verb} {result.events} events before {before}.")
    if result.dropped_partitions:
        click.echo(f"Partitions dropped: {', '.join(result.dropped_partitions)}")
    click.echo(
        "Rollups: kept (reports over pruned hours unchanged)."
        if keep_rollups
        else f"Rollups: {result.rollup_rows} hourly rows {'would be ' if dry_run else ''}deleted."
    )
    click.echo(f"Idempotency keys kept: {result.keys_kept} (a retry of a pruned event is not counted again).")


@main.command()
@click.option("--since", required=True, help="Start (inclusive), ISO 8601 date or date-time (UTC).")
@click.option("--until", required=True, help="End (exclusive), ISO 8601 date or date-time (UTC).")
@click.option(
    "--format", "fmt", required=True, type=click.Choice(["csv", "jsonl", "parquet"]), help="Output format."
)
@click.option(
    "--output", type=click.Path(dir_okay=False, writable=True), default=None, help="File (default: stdout)."
)
@click.option("--tenant", default=None, help="Only this tenant's events (default: every tenant).")
@_database_option
def export(
    since: str,
    until: str,
    fmt: str,
    output: Optional[str],
    tenant: Optional[str],
    database_url: Optional[str],
) -> None:
    """Stream raw usage events to CSV, JSON Lines or Parquet (Parquet needs the [export] extra).

    Costs and quantities are exact decimal strings; an unpriced event's cost is empty (CSV) or null."""
    from bearlumen.server.timefmt import parse_ts
    from bearlumen.server.usage.export import MissingParquetSupport, check_format, export_events

    start, end = parse_ts(since), parse_ts(until)
    if start is None:
        raise click.BadParameter("not an ISO 8601 date or date-time", param_hint="--since")
    if end is None:
        raise click.BadParameter("not an ISO 8601 date or date-time", param_hint="--until")
    if fmt == "parquet" and output is None:
        raise click.BadParameter("Parquet is binary: give a file", param_hint="--output")
    binary = fmt == "parquet"
    try:
        check_format(fmt)  # before creating the file
    except MissingParquetSupport as error:
        raise click.ClickException(str(error)) from None

    def run(out: Any) -> int:
        try:
            return int(
                _with_db(database_url, lambda db: export_events(db, out, fmt, start, end, tenant=tenant))
            )
        except (LookupError, MissingParquetSupport) as error:
            raise click.ClickException(str(error)) from None

    if output is None:
        count = run(sys.stdout)
    else:
        with open(output, "wb" if binary else "w", newline=None if binary else "") as handle:
            count = run(handle)
    click.echo(f"Exported {count} events.", err=True)


def _register_spool() -> None:
    from bearlumen.delivery.cli import spool

    main.add_command(spool)


_register_spool()


# Last: every command above must be registered before `python -m bearlumen.cli` runs the group.
if __name__ == "__main__":  # pragma: no cover
    main()
