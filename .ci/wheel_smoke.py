"""The smoke job of an installed wheel (run by .ci/wheel, outside the repository, in a fresh virtualenv).

    python wheel_smoke.py CASSETTE

With BEARLUMEN_API_KEY / BEARLUMEN_BASE_URL naming a running `bearlumen serve`: checks that bearlumen
comes from the installed wheel (not a checkout), records an event with the SDK, makes one instrumented
openai call replayed from a recorded cassette, and reads both back with exact tokens and cost.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from importlib.metadata import files, version

import openai
import vcr

import bearlumen

assert "site-packages" in bearlumen.__file__, f"bearlumen imported from {bearlumen.__file__}"
assert version("bearlumen") == bearlumen.__version__, (version("bearlumen"), bearlumen.__version__)
shipped = {str(path) for path in files("bearlumen") or []}
assert any(path.endswith("licenses/LICENSE") for path in shipped), "LICENSE is not in the wheel"
assert any(path.startswith("bearlumen/integrations/openai.py") for path in shipped)
print("bearlumen", bearlumen.__version__, "from", bearlumen.__file__)

client = bearlumen.Client()
recorded = client.usage.record(
    event_type="token_usage",
    metric_name="llm_tokens",
    quantity=1000,
    agent_id="smoke-sdk",
    metadata={"provider_cost_usd": "0.25"},
)
assert recorded["recorded"] is True

bearlumen.instrument()
player = vcr.VCR(
    record_mode="none", match_on=["method", "scheme", "host", "port", "path"], ignore_localhost=True
)
with player.use_cassette(sys.argv[1]), bearlumen.agent("smoke-openai"):
    openai.OpenAI(api_key="sk-replay", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
    )
bearlumen.flush()
stats = bearlumen.stats()
assert stats["delivered"] == 1 and stats["pending"] == 0, stats

now = datetime.now(timezone.utc)
by_agent = client.cost_attribution.by_agent(
    start_date=now - timedelta(hours=1), end_date=now + timedelta(minutes=1)
)
costs = {item["attributionValue"]: (item["totalCost"], item["eventCount"]) for item in by_agent["items"]}
assert costs == {"smoke-sdk": ("0.25", 1), "smoke-openai": ("0.0000048", 1)}, costs
(event,) = client.usage.query(agent_id="smoke-openai", limit=10)["events"]
assert event["quantity"] == 17, event
assert (event["metadata"]["input_tokens"], event["metadata"]["output_tokens"]) == (12, 5), event["metadata"]
assert by_agent["totalCost"] == "0.2500048", by_agent["totalCost"]
bearlumen.uninstrument()
client.close()
print("smoke: SDK record, instrumented openai call (12 + 5 tokens, $0.0000048), totals exact")
