"""End users and subscriptions: validation, storage and their JSON objects."""
