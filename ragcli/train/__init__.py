"""Offline training of what the levers need (rerankers, embedders): a layer above the stages it trains.

It may import `pipelines/` and `eval/`; the stages never import it.
"""
