"""Settings, errors, documents, URL identity, the pipeline's topology as data: imported by everything."""
