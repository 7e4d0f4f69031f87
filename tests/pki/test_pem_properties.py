"""Property tests: loading certificates, keys, key pairs, trust bundles and CSRs from any bytes
gives a value or a ``GrpcsecError`` (one line), never another exception (issue 11, item 8).

The oracle is the ``pem`` fuzz target's own ``check`` (fuzz/pem.py), which also uses every
loaded certificate as later code does (inspect, identity, chain order). Inputs: arbitrary
bytes, and valid PEM from the fuzz seeds with bytes changed either in the text or inside the
base64-decoded DER (where cryptography still frames the certificate but a field breaks).
"""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import pem as pem_target
from fuzz.seeds import SEEDS

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
_PEM_BODY = re.compile(rb"(-----BEGIN [A-Z ]+-----\n)(.*?)(-----END )", re.DOTALL)


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    return list(SEEDS["pem"]())


def mutate_der(seed: bytes, block: int, edits: list[tuple[int, int]]) -> bytes:
    """Change bytes inside the ``block``-th PEM body's DER and re-armour it."""
    bodies = list(_PEM_BODY.finditer(seed))
    if not bodies:
        return seed
    found = bodies[block % len(bodies)]
    der = bytearray(base64.b64decode(found.group(2)))
    for position, value in edits:
        der[position % len(der)] = value
    armoured = base64.encodebytes(bytes(der))
    return seed[: found.start(2)] + armoured + seed[found.end(2) :]


def mutate_text(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)


@PROPERTY_SETTINGS
@given(mode=st.integers(0, len(pem_target.LOADERS) - 1), data=st.binary(max_size=2048))
def test_arbitrary_bytes_load_or_raise_grpcsec_error(mode: int, data: bytes) -> None:
    pem_target.check(bytes([mode]) + data)


@PROPERTY_SETTINGS
@given(index=st.integers(0, 1000), block=st.integers(0, 3), edits=EDITS)
def test_valid_pem_with_der_bytes_changed(
    seeds: list[bytes], index: int, block: int, edits: list[tuple[int, int]]
) -> None:
    pem_target.check(mutate_der(seeds[index % len(seeds)], block, edits))


@PROPERTY_SETTINGS
@given(index=st.integers(0, 1000), edits=EDITS)
def test_valid_pem_with_text_bytes_changed(
    seeds: list[bytes], index: int, edits: list[tuple[int, int]]
) -> None:
    seed = seeds[index % len(seeds)]
    pem_target.check(seed[:1] + mutate_text(seed[1:], edits))


def test_every_seed_loads(seeds: list[bytes]) -> None:
    """The positive control: the unmodified seeds load (``check`` runs them to the end)."""
    assert len(seeds) > 10
    for seed in seeds:
        pem_target.check(seed)
