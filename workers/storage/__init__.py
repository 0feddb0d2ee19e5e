"""Every table (models), engines and sessions, the URL ledger, the item store, sources and learned lines."""
