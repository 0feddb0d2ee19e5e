"""Text normalisation and the gazetteer matcher: pure functions on strings."""
