"""
The twistd plugin of isis-twisted: C{twistd isis --help}.

One lazy object and no other imports, since twistd may import this module
on every run to rebuild its plugin cache.
"""

from twisted.application.service import ServiceMaker

isis = ServiceMaker(
    "isis-twisted node",
    "isis_twisted.app.tap",
    "A member of a totally ordered multicast group (isis-twisted).",
    "isis",
)
