"""``grpcsec policy check|eval``: A43 authorization policies (being written)."""
