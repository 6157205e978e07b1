"""The code snippets of the Python SDK reference (../shared/seed/python-sdk-reference.txt), verbatim.

``test_sdk_reference.py`` executes each one as written against a real service, with only the reference's
placeholder ids (``'eu_12345'``, ``'sub_12345'``) swapped for ids the test created. Do not edit a snippet
to make a test pass: fix the SDK.
"""

INSTALL = """\
import bearlumen
client = bearlumen.Client(api_key='your_api_key')
"""

CREATE_END_USER = """\
result = client.end_users.create(
external_id='user_123',
name='AI Startup Inc',
metadata={'ai_provider': 'openai'}
)
print(result['endUser']['id'])
"""

UPDATE_END_USER = """\
result = client.end_users.update(
'eu_12345',
name='Updated Name',
metadata={'plan': 'enterprise'}
)
"""

LIST_END_USERS = """\
result = client.end_users.list(
status='ACTIVE', # Optional: 'ACTIVE' or 'DEACTIVATED'
limit=50, # Optional
offset=0, # Optional
)
"""

DEACTIVATE_REACTIVATE = """\
# Soft delete (usage history retained)
client.end_users.deactivate('eu_12345')
# Restore access
client.end_users.reactivate('eu_12345')
"""

CREATE_SUBSCRIPTION = """\
subscription = client.subscriptions.create(
organization_id='org_123',
plan_id='plan_pro_monthly',
billing_cycle='monthly',
start_date='2024-01-01T00:00:00Z',
)
"""

RETRIEVE_UPDATE_CANCEL_LIST = """\
# Get by ID
sub = client.subscriptions.retrieve('sub_12345')
# Update fields
updated = client.subscriptions.update('sub_12345',
plan_id='plan_enterprise',
)
# Cancel
cancelled = client.subscriptions.cancel('sub_12345')
# List with optional filters
result = client.subscriptions.list(
organization_id='org_123', # Optional
limit=20, # Optional
offset=0, # Optional
)
"""

RECORD_USAGE = """\
result = client.usage.record(
event_type='token_usage',
metric_name='llm_tokens',
quantity=150000,
idempotency_key='invoice-001-summary',
agent_id='support-bot',
workflow_id='customer-onboarding',
metadata={
'model': 'gpt-4-turbo',
'provider': 'openai',
'provider_cost_usd': 4.50,
}
)
if not result['recorded']:
    print('Duplicate event skipped')
"""

RECORD_BATCH = """\
result = client.usage.record_batch([
{
'event_type': 'token_usage',
'metric_name': 'llm_tokens',
'quantity': 1000,
'idempotency_key': 'batch-1-evt-1',
},
{
'event_type': 'token_usage',
'metric_name': 'llm_tokens',
'quantity': 2000,
'idempotency_key': 'batch-1-evt-2',
},
])
print(f"Recorded: {result['recorded_count']}, Skipped: {result['skipped_count']}")
"""

QUERY_USAGE = """\
events = client.usage.query(
subscription_id='sub_123',
metric_name='llm_tokens',
start_date='2024-01-01',
end_date='2024-01-31',
limit=100,
)
"""

AGGREGATION = """\
aggregation = client.usage.aggregation(
subscription_id='sub_123',
start_date='2024-01-01',
end_date='2024-01-31',
)
"""

SUMMARY = """\
summary = client.usage.summary(
subscription_id='sub_123',
start_date='2024-01-01',
end_date='2024-01-31',
)
"""

BY_AGENT = """\
result = client.cost_attribution.by_agent(
start_date='2024-01-01T00:00:00Z',
end_date='2024-02-01T00:00:00Z',
)
for item in result['items']:
    print(f"{item['attributionValue']}: ${item['totalCost']}")
print(f"Total: ${result['totalCost']}")
"""

BY_WORKFLOW = """\
result = client.cost_attribution.by_workflow(
start_date='2024-01-01T00:00:00Z',
end_date='2024-02-01T00:00:00Z',
)
"""

LIST_AGENTS = """\
result = client.cost_attribution.list_agents(
start_date='2024-01-01T00:00:00Z',
end_date='2024-02-01T00:00:00Z',
)
print('Active agents:', result['values'])
"""

LIST_WORKFLOWS = """\
result = client.cost_attribution.list_workflows(
start_date='2024-01-01T00:00:00Z',
end_date='2024-02-01T00:00:00Z',
)
print('Active workflows:', result['values'])
"""

ERROR_HANDLING = """\
from bearlumen import (
Client,
InvalidEmailError,
RateLimitError,
AuthenticationError,
BearLumenError,
)
try:
    result = client.end_users.create(
    external_id='user_123',
    name='AI Startup Inc',
    )
except InvalidEmailError:
    print('Invalid email format')
except RateLimitError as e:
    print(f'Rate limit hit, retry after {e.retry_after} seconds')
except AuthenticationError:
    print('Invalid API key')
except BearLumenError as e:
    print(f'Error: {e.message}')
"""

IMPORT_EXCEPTIONS = """\
from bearlumen import (
Client,
InvalidEmailError,
DuplicateCustomerError,
InvalidRequestError,
AuthenticationError,
NotFoundError,
RateLimitError,
NetworkError,
BearLumenError,
)
"""

TYPE_HINTS = """\
from bearlumen import Client, EndUser, Subscription, UsageRecordInput, CostBreakdownResponse
client: Client = Client(api_key='your_key')
"""
