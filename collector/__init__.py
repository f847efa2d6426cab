"""The pairwatch service: listeners, framing, pipeline, correlator, store, metrics, HTTP API, CLI."""

__version__ = "0.1.0"
