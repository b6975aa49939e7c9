"""The ingest and query pipelines as plain functions, and the shipped preset configs."""
