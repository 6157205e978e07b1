"""Test support: the real service, cassettes, fault injection."""
