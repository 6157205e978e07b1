"""Integrations with LLM client libraries (imported as ``bearlumen.integrations``)."""
