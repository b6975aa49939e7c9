"""The OpenAI-compatible gateway (`ragcli serve`): thin, HTTP in, pipeline call, HTTP out.

Start at `gateway.py` (who may call, which pipeline, the key's tenant scope and dollars), then `app.py` (the
FastAPI routes and the stream), `openai_schema.py` (the request and response shapes) and `key_store.py` (API keys,
stored hashed). `build.py` turns `ragcli serve` options into a gateway for each uvicorn worker. The CLI's warm
path: `discovery.py` (how `ragcli query` finds a running server of its config) and `local_query.py` (the route
that answers it).
"""
