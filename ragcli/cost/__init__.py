"""Cost: prices, token counting, the ledger and reports. Cost is cross-cutting: ingest pays too."""
