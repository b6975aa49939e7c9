"""Ingest: parse files, chunk them by structure, embed the chunks. Roles are in `protocols.py`."""
