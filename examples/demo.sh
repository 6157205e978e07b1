#!/usr/bin/env bash
# The main job, from a fresh machine: install, start the Bear Lumen service on its embedded SQLite
# default, run the instrumented example workloads (offline, on recorded real provider traffic unless
# provider keys are set), and print the cost report by agent and by workflow.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BEARLUMEN_VENV:-.venv}"
if [ "${BEARLUMEN_SKIP_INSTALL:-0}" != "1" ]; then
    [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[examples]"
fi
BIN="$(cd "$VENV/bin" && pwd)"
PY="$BIN/python"

# The service's home (SQLite database, first API key in plain text, log, spool): a fresh temp folder
# removed when the demo ends, or BEARLUMEN_DEMO_HOME to keep them there (reused by the next run).
if [ -n "${BEARLUMEN_DEMO_HOME:-}" ]; then
    mkdir -p "$BEARLUMEN_DEMO_HOME"
    export BEARLUMEN_HOME="$(cd "$BEARLUMEN_DEMO_HOME" && pwd)"
    KEEP_HOME=1
else
    export BEARLUMEN_HOME="$(mktemp -d "${TMPDIR:-/tmp}/bearlumen-demo.XXXXXX")"
    KEEP_HOME=0
fi
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    [ "$KEEP_HOME" = 1 ] || rm -rf "$BEARLUMEN_HOME"
}
trap cleanup EXIT
PORT="${BEARLUMEN_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
"$BIN/bearlumen" serve --port "$PORT" --bootstrap-key-file "$BEARLUMEN_HOME/first-key" \
    > "$BEARLUMEN_HOME/serve.log" 2>&1 &
SERVER=$!

export BEARLUMEN_BASE_URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    "$PY" -c "import httpx,sys; sys.exit(httpx.get('$BEARLUMEN_BASE_URL/healthz').status_code != 200)" 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$BEARLUMEN_HOME/serve.log"; exit 1; }
    sleep 0.2
done
if [ "$KEEP_HOME" = 1 ]; then
    echo "Bear Lumen service on $BEARLUMEN_BASE_URL (database, key and log kept in $BEARLUMEN_HOME)"
else
    echo "Bear Lumen service on $BEARLUMEN_BASE_URL (database, key and log in $BEARLUMEN_HOME, removed at exit)"
fi
export BEARLUMEN_API_KEY="$(cat "$BEARLUMEN_HOME/first-key")"
export BEARLUMEN_SPOOL_DIR="$BEARLUMEN_HOME/spool"

cd examples
for example in quickstart.py multi_agent.py langchain_chain.py langgraph_agents.py pydantic_ai_agents.py \
    openai_agents_handoff.py; do
    [ -f "$example" ] || continue
    echo
    echo "=== examples/$example"
    "$PY" "$example"
done
echo
"$BIN/bearlumen" report
