"""Where URLs come from: feeds, sitemaps, discovery and per-host politeness. No database."""
