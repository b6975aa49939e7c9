"""Retrieval: stores, filters, search and rerank. Roles are in `protocols.py`."""
