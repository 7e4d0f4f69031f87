"""``grpcsec doctor``: why a secure connection fails (being written)."""
