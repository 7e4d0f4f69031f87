"""``python -m grpcsec``: the same as the ``grpcsec`` console script."""

from grpcsec.cli import main

main()
