"""Writes of the labeling app. Import from the submodules: `from labeling.services import ingest`."""
