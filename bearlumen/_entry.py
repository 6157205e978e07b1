"""The `bearlumen` command's entry point: a clear message when the CLI's extra is not installed.

The command (click, the service) ships in `bearlumen[server]`; `pip install bearlumen` alone installs the
SDK, whose users may still type `bearlumen`.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from bearlumen.cli import main as cli
    except ImportError as error:
        sys.stderr.write(
            f"bearlumen: the command needs the service extra ({error.name} is missing):\n"
            "    pip install 'bearlumen[server]'\n"
        )
        raise SystemExit(1) from None
    cli()
