"""``grpcsec token verify|mint``: bearer tokens (being written)."""
