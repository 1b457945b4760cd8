"""Network-side student activity monitor: the pure core (catalogue, classification, identity,
policy, incidents) and its adapters (stores, metrics, review app, sensor, reports, CLI)."""

__version__ = "0.1.0"
