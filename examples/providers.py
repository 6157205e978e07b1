"""One workload per provider family beyond OpenAI and Anthropic, metered by the same `instrument()`.

Five agents, one per family: Google Gemini (google-genai), Mistral (mistralai), AWS Bedrock (boto3:
Converse, InvokeModel and InvokeModelWithResponseStream), Ollama (a local model, priced here by a price
the user gives) and LiteLLM (routing to Anthropic). At the end the example prints the cost by agent.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/providers.py
    python examples/providers.py          # no service URL: an embedded service on a fresh SQLite file

With no provider key set it replays recorded real provider traffic (see _offline.py).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

from _offline import provider_keys, recorded
from _service import connect

import bearlumen

HELLO = [{"role": "user", "content": "Tell me a joke"}]


def gemini() -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(http_options=types.HttpOptions(api_version="v1beta"))  # reads GEMINI_API_KEY
    with recorded("openinference/google-genai/test_validate_token_counts.yaml"):
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")


def mistral() -> None:
    from mistralai.client import Mistral

    client = Mistral(api_key=os.environ["MISTRAL_API_KEY"])
    with recorded("openllmetry/mistral/test_mistralai_chat_legacy.yaml"):
        client.chat.complete(model="mistral-tiny", messages=HELLO)
    with recorded("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
        for _event in client.chat.stream(model="mistral-tiny", messages=HELLO):
            pass


def bedrock() -> None:
    import boto3

    runtime = boto3.client("bedrock-runtime", region_name="us-east-1")
    with recorded("otel-python-contrib/bedrock/test_converse_tool_call_with_content.yaml"):
        messages = [{"role": "user", "content": [{"text": "Tell me a joke"}]}]
        runtime.converse(modelId="amazon.nova-micro-v1:0", messages=messages)
    with recorded("openllmetry/bedrock/test_meta_llama3_completion.yaml"):
        body = runtime.invoke_model(
            modelId="meta.llama3-70b-instruct-v1:0", body=json.dumps({"prompt": "Hi"})
        )
        json.loads(body["body"].read())
    with recorded("openinference/bedrock/TestInvokeModelWithStreamResponse.test_invoke.yaml"):
        stream = runtime.invoke_model_with_response_stream(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body=json.dumps({"messages": HELLO})
        )
        for _event in stream["body"]:
            pass


def ollama_local() -> None:
    import ollama

    with recorded("openllmetry/ollama/test_ollama_chat_legacy.yaml", local_port=11434):
        ollama.Client(host="http://127.0.0.1:11434").chat(model="llama3", messages=HELLO)


def litellm_router() -> None:
    import litellm

    litellm.suppress_debug_info = True
    with recorded("openinference/litellm/TestTokenCounts.test_anthropic.yaml"):
        litellm.completion(model="anthropic/claude-3-5-haiku-20241022", messages=HELLO)


def main() -> None:
    provider_keys()
    client = connect()
    started = datetime.now(timezone.utc)
    # A local model has no list price: give one (USD per 1M tokens) to see its cost.
    bearlumen.instrument(client, pricing={"models": {"llama3": {"input": "0.10", "output": "0.20"}}})

    with bearlumen.workflow("provider-tour"):
        for agent, run in (
            ("gemini-researcher", gemini),
            ("mistral-joker", mistral),
            ("bedrock-analyst", bedrock),
            ("ollama-local", ollama_local),
            ("litellm-router", litellm_router),
        ):
            with bearlumen.agent(agent):
                run()

    bearlumen.flush(timeout=30)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    report = client.cost_attribution.by_agent(start_date=started, end_date=end)
    print("cost by agent:")
    for item in sorted(report["items"], key=lambda item: str(item["attributionValue"])):
        print(f"  {item['attributionValue']:<18} ${item['totalCost']} over {item['eventCount']} call(s)")
    bearlumen.uninstrument()


if __name__ == "__main__":
    main()
