"""ragcli's retrieval inside other frameworks: LlamaIndex (`llamaindex.py`) and LangChain (`langchain.py`).

Each adapter is a thin shell over the same steps `ragcli.answer` runs (filtered dense/hybrid search with the
tenant scope, rerank, token-budgeted packing), so a query through a host framework is filtered, billed and
recorded in the ledger exactly like one through ragcli. Install with `pip install 'ragcli[llamaindex]'` or
`'ragcli[langchain]'`.
"""
