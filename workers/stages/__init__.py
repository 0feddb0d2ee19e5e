"""The pipeline's stages as pure functions on plain data: fetch, clean, strip, classify, stories. No database."""
