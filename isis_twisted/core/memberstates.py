"""
The states of a member of a group whose membership changes, as
L{isis_twisted.core.membership.Membership} and its parts set and read them.

They live apart from the membership so that its parts (the modules it
imports) can name them too.
"""

from __future__ import annotations

NORMAL, FLUSHING, BLOCKED, REMOVED, JOINING = (
    "normal",
    "flushing",
    "blocked",
    "removed",
    "joining",
)
"""
The states of a member: delivering in its view; closing it; unable to close
it without a majority; out of the group; asking to be added to it.
"""
