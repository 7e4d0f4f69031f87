"""``grpcsec check`` and ``grpcsec exporter``: expiry monitoring (being written)."""
