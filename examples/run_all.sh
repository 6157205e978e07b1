#!/usr/bin/env bash
# Every example, against a fresh service, in the virtualenv named by BEARLUMEN_VENV (CI uses this).
set -euo pipefail
BEARLUMEN_SKIP_INSTALL=1 exec bash "$(dirname "$0")/demo.sh"
