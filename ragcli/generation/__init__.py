"""Generation: packing, prompts, LLM providers. Roles are in `protocols.py`."""
