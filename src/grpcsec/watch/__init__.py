"""The one file watcher behind certificate rotation, policy files, JWKS files and token files.

:class:`Watch` (in :mod:`grpcsec.watch.core`) keeps a value built from a source current;
:mod:`grpcsec.watch.status` holds its values (:class:`ReloadOutcome`, :class:`Refusal`,
:class:`WatchStatus`) and the :class:`Source` protocol that
:class:`grpcsec.fileio.FileSet` implements for files. No grpc import.
"""

from grpcsec.watch.core import Watch
from grpcsec.watch.status import Digested, Refusal, ReloadOutcome, Source, WatchStatus

__all__ = ["Digested", "Refusal", "ReloadOutcome", "Source", "Watch", "WatchStatus"]
