"""The demo: the canonical Greeter service over mTLS, and a scenario that proves the refusals.

:mod:`~grpcsec.demo.helloworld` builds the protocol in code, :mod:`~grpcsec.demo.greeter` serves
it (sync and aio) and says who called, :mod:`~grpcsec.demo.scenario` runs one good and two
refused calls against a throwaway CA. Nothing in the library imports this package.
"""
