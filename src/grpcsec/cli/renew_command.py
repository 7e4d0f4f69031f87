"""``grpcsec renew``: the certificate renewal agent (being written)."""
