"""The SDK reference, end to end: end users, subscriptions, usage, cost attribution, errors.

BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/quickstart.py
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import bearlumen
from bearlumen import BearLumenError, DuplicateCustomerError, InvalidEmailError, NotFoundError


def main() -> None:
    client = bearlumen.Client()  # api key and URL from BEARLUMEN_API_KEY / BEARLUMEN_BASE_URL
    run = uuid.uuid4().hex[:8]  # so the example can run again against the same service

    created = client.end_users.create(
        external_id=f"user_{run}",
        name="AI Startup Inc",
        email="billing@aistartup.example",
        metadata={"ai_provider": "openai"},
    )
    end_user_id = created["endUser"]["id"]
    print("end user:", end_user_id)
    client.end_users.update(end_user_id, name="Updated Name", metadata={"plan": "enterprise"})

    subscription = client.subscriptions.create(
        organization_id="org_123",
        plan_id="plan_pro_monthly",
        billing_cycle="monthly",
        start_date="2024-01-01T00:00:00Z",
    )
    subscription_id = subscription["subscription"]["id"]
    print("subscription:", subscription_id)

    result = client.usage.record(
        event_type="token_usage",
        metric_name="llm_tokens",
        quantity=150000,
        idempotency_key=f"invoice-{run}-summary",
        agent_id="support-bot",
        workflow_id="customer-onboarding",
        subscription_id=subscription_id,
        end_user_id=end_user_id,
        metadata={"model": "gpt-4-turbo", "provider": "openai", "provider_cost_usd": 4.50},
    )
    print("recorded:", result["recorded"])
    again = client.usage.record(
        event_type="token_usage",
        metric_name="llm_tokens",
        quantity=150000,
        idempotency_key=f"invoice-{run}-summary",
    )
    if not again["recorded"]:
        print("Duplicate event skipped")

    batch = client.usage.record_batch(
        [
            {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": 1000,
                "idempotency_key": f"batch-{run}-1",
                "subscription_id": subscription_id,
            },
            {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": 2000,
                "idempotency_key": f"batch-{run}-2",
                "subscription_id": subscription_id,
            },
        ]
    )
    print(f"Recorded: {batch['recorded_count']}, Skipped: {batch['skipped_count']}")

    summary = client.usage.summary(subscription_id=subscription_id)
    print(
        "summary for the subscription:", summary["totalEvents"], "events,", summary["totalQuantity"], "tokens"
    )

    now = datetime.now(timezone.utc)
    window = {
        "start_date": (now - timedelta(days=1)).isoformat(),
        "end_date": (now + timedelta(minutes=1)).isoformat(),
    }
    by_agent = client.cost_attribution.by_agent(**window)
    for item in by_agent["items"]:
        print(f"{item['attributionValue'] or '(no agent)'}: ${item['totalCost']}")
    print(f"Total: ${by_agent['totalCost']}")
    print("Active agents:", client.cost_attribution.list_agents(**window)["values"])

    try:
        client.end_users.create(external_id=f"user_{run}", name="AI Startup Inc")
    except DuplicateCustomerError as error:
        print("duplicate external id:", error.message)
    try:
        client.end_users.create(external_id=f"other_{run}", email="not-an-email")
    except InvalidEmailError as error:
        print("invalid email:", error.message)
    try:
        client.subscriptions.retrieve("sub_does_not_exist")
    except NotFoundError as error:
        print("not found:", error.status_code, error.code)
    except BearLumenError as error:
        print("error:", error.message)

    client.end_users.deactivate(end_user_id)
    client.end_users.reactivate(end_user_id)
    client.subscriptions.cancel(subscription_id)
    client.close()


if __name__ == "__main__":
    main()
