"""Per-call overhead of the Gemini, Ollama, Mistral, Bedrock Converse and LiteLLM integrations.

Each real client library talks to an in-process transport that serves a response body recorded from the
real API (the vendored cassettes in `tests/cassettes/`), so the whole client path runs (request building,
JSON decoding, the library's own models) and nothing touches the network:

- gemini: `genai.Client(...).models.generate_content`, `httpx.MockTransport` via `HttpOptions.httpx_client`.
- ollama: `ollama.Client(transport=httpx.MockTransport)` `chat`.
- mistral: `Mistral(client=httpx.Client(transport=...))` `chat.complete`.
- bedrock-converse: boto3 `bedrock-runtime` `converse`; botocore has no pluggable transport, so a
  `before-send` event handler answers with the recorded body (signing and parsing still run).
- litellm: `litellm.completion("openai/gpt-4o-mini", client=openai.OpenAI(http_client=MockTransport))`
  (only the litellm integration is installed: the openai one is not, so this is LiteLLM's own cost).

Measured in one run, interleaved (`benchmarks/_overhead.py`): each round times a batch with the
integration uninstalled and a batch with it installed, back to back, alternating which goes first; the
ratio is the median of the rounds' ratios. Metered calls go to a sink doing what the exporter does on
the caller's thread.

    python benchmarks/providers_overhead.py [--rounds 30] [--batch 30] [--only gemini,ollama]

Target (issue 12): at most 1.03x the uninstrumented call.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
from importlib import import_module
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bearlumen.metering import record  # noqa: E402
from benchmarks._overhead import TABLE_HEADER, QueueSink, measure, recorded_body  # noqa: E402

MESSAGES: Any = [{"role": "user", "content": "Tell me a joke"}]
JSON = {"content-type": "application/json"}


def _serve(body: bytes) -> Any:
    import httpx

    return httpx.MockTransport(lambda request: httpx.Response(200, headers=JSON, content=body))


def gemini() -> Callable[[], Any]:
    import httpx
    from google import genai
    from google.genai import types

    body = recorded_body("openinference/google-genai/test_validate_token_counts.yaml")
    client = genai.Client(
        api_key="bench",
        http_options=types.HttpOptions(
            api_version="v1beta", httpx_client=httpx.Client(transport=_serve(body))
        ),
    )
    return lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi")


def ollama() -> Callable[[], Any]:
    import ollama as library

    client = library.Client(
        transport=_serve(recorded_body("openllmetry/ollama/test_ollama_chat_legacy.yaml"))
    )
    return lambda: client.chat(model="llama3", messages=MESSAGES)


def mistral() -> Callable[[], Any]:
    import httpx
    from mistralai.client import Mistral

    body = recorded_body("openllmetry/mistral/test_mistralai_chat_legacy.yaml")
    client = Mistral(api_key="bench", client=httpx.Client(transport=_serve(body)))
    return lambda: client.chat.complete(model="mistral-tiny", messages=MESSAGES)


class _Raw:
    """The urllib3 response botocore reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._body.read()

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self._body.read(*args)


def bedrock_converse() -> Callable[[], Any]:
    import boto3
    from botocore.awsrequest import AWSResponse

    body = recorded_body("otel-python-contrib/bedrock/test_converse_tool_call_with_content.yaml")
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b"
    )
    headers = {"content-type": "application/json", "x-amzn-requestid": "bench"}

    def answer(request: Any, **kwargs: Any) -> Any:
        return AWSResponse(request.url, 200, headers, _Raw(body))

    client.meta.events.register("before-send.bedrock-runtime.Converse", answer)
    messages = [{"role": "user", "content": [{"text": "Tell me a joke"}]}]
    return lambda: client.converse(modelId="amazon.nova-micro-v1:0", messages=messages)


def litellm() -> Callable[[], Any]:
    import httpx2
    import litellm as library
    import openai

    library.suppress_debug_info = True
    body = recorded_body("otel-python-contrib/openai/test_chat_completion_with_content.yaml")
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, headers=JSON, content=body))
    client = openai.OpenAI(api_key="bench", max_retries=0, http_client=httpx2.Client(transport=transport))
    return lambda: library.completion(model="openai/gpt-4o-mini", messages=MESSAGES, client=client)


WORKLOADS: Dict[str, Tuple[str, Callable[[], Callable[[], Any]]]] = {
    "gemini": ("gemini", gemini),
    "ollama": ("ollama", ollama),
    "mistral": ("mistral", mistral),
    "bedrock-converse": ("bedrock", bedrock_converse),
    "litellm": ("litellm", litellm),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--only", default=",".join(WORKLOADS))
    args = parser.parse_args()

    sink = QueueSink()
    previous = record.set_sink(sink)
    rows = []
    for name in args.only.split(","):
        module_name, build = WORKLOADS[name]
        integration = import_module(f"bearlumen.integrations.{module_name}")
        run = build()
        # Sanity: the instrumented call is metered exactly once.
        before = sink.count
        integration.install()
        run()
        integration.uninstall()
        assert sink.count == before + 1, (name, sink.count - before)
        rows.append(measure(run, integration, args.rounds, args.batch, sink).row(name))
        print(rows[-1], flush=True)
    record.set_sink(previous)

    print(f"\nPython {platform.python_version()}, {args.rounds} rounds x {args.batch} calls, medians\n")
    print(TABLE_HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
