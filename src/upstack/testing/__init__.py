"""Testing toolkit for client developers: a real upstack server for a test session, a fresh tenant per test, and
helpers to load data, pace jobs, inject faults and read the request journal (docs/TESTING.md).

    from upstack.testing import UpstackServer

    with UpstackServer() as server:          # a real `upstack serve` on a free port, in a temp data dir
        t = server.tenant()                  # a fresh org + sandbox: nobody else's data
        ds = t.dataset("crm", profile=True)
        t.ingest(ds, [{"identityMap": {"Email": [{"id": "a@example.com"}]}}])

With pytest, the `upstack` fixture (registered by the package's pytest11 entry point) is such a tenant.
Only the standard library is used here, so installing upstack is all a client project needs.
"""

from upstack.testing.client import JournaledRequest, Response, Upstack, UpstackError
from upstack.testing.server import UpstackServer

__all__ = ["JournaledRequest", "Response", "Upstack", "UpstackError", "UpstackServer"]
