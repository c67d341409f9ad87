"""
Where members listen: the address book a member keeps so that members
added at run time, which no member was started with, can be reached.

Pure: it takes what control messages say and answers what to put in them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from isis_twisted.core.views import Addresses


class AddressBook:
    """
    Every member's address as far as one member knows.

    A founding member's address (one the group was started with), once
    known, never changes: it is what the operator gave, and a message from
    a stranger must not be able to move it.  A member added at run time
    says where it listens when it asks to join, and the view change that
    adds it carries that to everyone; that is the address others take, and
    a later request from it (restarted with another address) replaces it.

    @ivar me: The owner's name.
    @ivar own: Where the owner listens, if it knows (a founding member
        started without an address to give knows only its peers').
    @ivar founders: The members the group was started with.
    @ivar version: How many times what it knows changed: a cheap way to
        tell that there is something new.
    """

    def __init__(
        self,
        me: str,
        founders: Iterable[str],
        configured: Mapping[str, str] = {},
        own: str = "",
    ) -> None:
        """
        @param me: The owner's name.
        @param founders: The members the group was started with.
        @param configured: The addresses the owner was given.
        @param own: Where the owner listens, or C{""}.
        """
        self.me = me
        self.own = own
        self.founders = frozenset(founders)
        self.version = 0
        self._known: dict[str, str] = {
            name: address for name, address in configured.items() if address
        }
        if own:
            self._known[me] = own

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(sorted(self._known.items()))

    def get(self, name: str) -> str | None:
        """
        Where C{name} listens, or L{None} if the owner does not know.
        """
        return self._known.get(name)

    def learn(self, entries: Iterable[tuple[str, str]], settled: bool = False) -> None:
        """
        Take in addresses from a message.

        @param settled: They come from the member itself or from a decided
            view change, so they replace what is known of a member added at
            run time; otherwise only names not known yet are taken.
        """
        for name, address in entries:
            if not address or name == self.me:
                continue
            known = self._known.get(name)
            if known is None or (
                settled and known != address and name not in self.founders
            ):
                self._known[name] = address
                self.version += 1

    def forget(self, name: str) -> None:
        """
        Forget where C{name} listens, unless it is a founding member: it was
        added at run time and has left.
        """
        if name not in self.founders and self._known.pop(name, None) is not None:
            self.version += 1

    def of(self, members: Iterable[str]) -> Addresses:
        """
        The addresses of C{members} that the owner knows, for a message.
        """
        known = self._known
        return tuple(sorted((n, known[n]) for n in set(members) if n in known))
