"""Writes of the labeling app. Import the submodules: `from labeling.services import ingest`."""
