"""
A member's links to its peers: L{Peers} keeps one L{PeerLink} per peer,
founding members and those added at run time alike, in step with the
membership; dials each peer whose address it knows, keeps the idle links
beating, reports the peers that fall silent and closes every link and
connection when the member stops.  Where the member listens for its peers'
connections is L{isis_twisted.net.listener}.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger

from isis_twisted.core.membership import GROUP_LIMIT
from isis_twisted.net.certs import client_endpoint
from isis_twisted.net.connection import PeerFactory
from isis_twisted.net.link import PeerDialer, PeerLink

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode

PENDING_STRANGERS = 8
"""
The most links a member keeps at once for names that no view or request to
join vouches for yet (members added at run time whose first HELLO came
before their JOIN).
"""


class Peers:
    """
    The links to one member's peers, and how each is dialled.

    @ivar links: The link to every peer, by name.
    @ivar dial_at: How to reach every peer whose address is known, by name:
        an endpoint description or an endpoint.
    @ivar started_at: When the member was made or last started: a peer
        never heard from is silent since then.
    @ivar refused_for_good: Fires, once, with the sentence that says why
        the member can never be let in (see L{MulticastNode}).
    @ivar refused_because: That sentence, once it is known.
    """

    def __init__(
        self,
        node: MulticastNode,
        log: Logger,
        peers: Mapping[str, str | IStreamClientEndpoint],
        ack_delay: float,
        retry_max_delay: float,
    ) -> None:
        """
        @param node: The member, which owns the links.
        @param log: The member's logger: what is said here is the member's.
        @param peers: The founding peers' names and how to reach them.
        @param ack_delay: See L{MulticastNode}.
        @param retry_max_delay: The longest wait between redials of a peer.
        """
        self._node = node
        self._log = log
        self.links = {
            name: PeerLink(node, name, node.max_buffer, ack_delay)
            for name in sorted(peers)
        }
        self.dial_at = dict(peers)
        self._ack_delay = ack_delay
        # Jitter a fraction of the first delay: enough to spread a group's
        # redials, not the default second that would stall a loopback group.
        self._retry = backoffPolicy(
            initialDelay=0.05,
            maxDelay=retry_max_delay,
            jitter=lambda: random.uniform(0, 0.05),
        )
        self._retry_max_delay = retry_max_delay
        self.refused_for_good: Deferred[str] = Deferred()
        self.refused_because: str | None = None
        for link in self.links.values():
            link.on_locked_out = self.locked_out
        self._links_for: tuple[int, int, int] | None = None
        self.started_at = node.clock.seconds()
        self._reported: dict[str, float] = {}
        self._dialers: list[ClientService] = []
        self._factories: list[PeerFactory] = []

    # -- links ------------------------------------------------------------

    def add(self, name: str, address: str) -> PeerLink | None:
        """
        Make a link to member C{name}, which the group was not started with,
        dialled at C{address}; L{None} if the group is at L{GROUP_LIMIT}
        (see L{MulticastNode.add_peer}).
        """
        node = self._node
        link = self.links.get(name)
        if link is not None:
            return link
        membership = node.membership
        needed = name in membership.view.members or name in membership.joiners
        if not needed:
            # A name nobody vouches for yet (an unauthenticated HELLO in a
            # group without a secret): only a few at a time, so that
            # strangers cannot fill the table that members need.
            pending = [
                n
                for n in self.links
                if n not in node.members
                and n not in membership.view.members
                and n not in membership.joiners
            ]
            if len(self.links) + 1 >= max(GROUP_LIMIT, len(node.members)) or (
                len(pending) >= PENDING_STRANGERS
            ):
                return None
        if address:
            try:
                clientFromString(node.clock, address)
            except Exception:
                return None
        link = PeerLink(node, name, node.max_buffer, self._ack_delay)
        link.on_locked_out = self.locked_out
        self.links[name] = link
        if address:
            self.dial_at[name] = address
            if node.running:
                self._dial(name, address)
        return link

    def follow(self) -> None:
        """
        At the end of a turn: give every member the membership knows of a
        link if it changed since, and start afresh the links to the
        incarnations a view change added.
        """
        membership = self._node.membership
        at = (membership.view.id, membership.addresses.version, len(membership.joiners))
        if at != self._links_for:
            self._links_for = at
            self._sync_links()
        links = self.links
        for name, incarnation in membership.joined_as.items():
            to = links.get(name)
            if to is not None and to.incarnation != incarnation:
                # A view change added this incarnation, maybe before its
                # connection reached this member: what the view sends it
                # from now on is for it, on a link started afresh.
                to.restart(incarnation)

    def recheck(self) -> None:
        """
        The membership's addresses were replaced: compare the links with it
        again at the end of the turn, whatever L{follow} saw last.
        """
        self._links_for = None

    def _sync_links(self) -> None:
        """
        Give every member the membership knows of a link, and dial those
        whose address it learned: members added at run time, or, for a
        member that joined, the group's.
        """
        node = self._node
        membership = node.membership
        book = membership.addresses
        names = {*membership.view.members, *membership.joiners}
        names.update(name for name, _ in book)
        names.discard(node.me)
        for name in sorted(names):
            address = book.get(name) or ""
            link = self.links.get(name)
            if link is None:
                self.add(name, address)
            elif address and name not in self.dial_at:
                self.dial_at[name] = address
                if node.running:
                    self._dial(name, address)

    def forget(self, members: tuple[str, ...]) -> None:
        """
        Close the links of members added at run time that are neither in
        the view handed out (C{members}, which may be older than the
        membership's) nor in the current one, ask for nothing and are given
        nothing.
        """
        node = self._node
        membership = node.membership
        keep = {
            *members,
            *membership.view.members,
            *membership.joiners,
            *node.members,
            *node.catchup.serving,
        }
        for name in [n for n in self.links if n not in keep]:
            link = self.links.pop(name)
            link.close()
            self.dial_at.pop(name, None)
            membership.addresses.forget(name)
            for service in [d for d in self._dialers if d.name == f"peer {name}"]:
                self._dialers.remove(service)
                service.disownServiceParent()
        self._links_for = None

    def locked_out(self, sentence: str) -> None:
        """
        Most of the group refused this member for good, as C{sentence} says:
        say so once and fire L{refused_for_good}.
        """
        if self.refused_because is not None:
            return
        self.refused_because = sentence
        self._log.error("{sentence}", sentence=sentence)
        self.refused_for_good.callback(sentence)

    def hears(self, name: str, now: float) -> bool:
        """
        Whether member C{name} was heard from within two heartbeats (an
        idle link carries one every heartbeat).
        """
        link = self.links.get(name)
        return self._node.detector.hears(link.last_heard if link else None, now)

    # -- dialling ----------------------------------------------------------

    def dial_all(self) -> None:
        """
        Start dialling every peer whose address is known, unless that was
        done before (the member was started before).
        """
        if not self._dialers:
            for name, where in self.dial_at.items():
                self._dial(name, where)

    def _dial(self, name: str, where: str | IStreamClientEndpoint) -> None:
        """
        Keep dialling member C{name} at C{where}.
        """
        node = self._node
        endpoint = (
            clientFromString(node.clock, where) if isinstance(where, str) else where
        )
        if node.tls is not None:
            endpoint = client_endpoint(node.tls, name, endpoint)
        dialing = PeerFactory(node, self.links[name])
        self._factories.append(dialing)
        service: ClientService = PeerDialer(
            endpoint,
            dialing,
            retryPolicy=self.links[name].retry_policy(
                self._retry, self._retry_max_delay
            ),
            clock=node.clock,
        )
        service.setName(f"peer {name}")
        service.setServiceParent(node)
        self._dialers.append(service)

    def factory(self) -> PeerFactory:
        """
        A factory for connections that peers dial to this member.
        """
        factory = PeerFactory(self._node)
        self._factories.append(factory)
        return factory

    def started(self, now: float) -> None:
        """
        The member was started at C{now}: open the links again.
        """
        self.started_at = now
        # A node started again with its state gives its peers the time to
        # be heard from before it suspects them.
        for link in self.links.values():
            link.closed = False
            if link.last_heard is not None:
                link.last_heard = now

    def beat(self, now: float) -> None:
        """
        Every heartbeat: send a heartbeat on every idle link, and say which
        members of the view have been silent for too long, once a silence.
        """
        node = self._node
        waiting = set(node.engine.waiting_for())
        in_view = node.membership.view.members
        for name, link in self.links.items():
            link.heartbeat(now, node.heartbeat, node.silence)
            if name not in in_view:
                # Out of the group: the view change said so, once.
                self._reported.pop(name, None)
                continue
            heard = link.last_heard if link.last_heard is not None else self.started_at
            quiet = now - heard
            if quiet < node.silence:
                if name in self._reported:
                    del self._reported[name]
                    self._log.info("member {peer!r} is heard from again", peer=name)
                continue
            last = self._reported.get(name)
            if last is not None and now - last < node.silence:
                continue
            self._reported[name] = now
            held = (
                f"; delivery of {node.engine.queue_length} held messages waits for it"
                if name in waiting
                else ""
            )
            self._log.warn(
                "member {peer!r} has been silent for {seconds:.1f} s{held}",
                peer=name,
                seconds=quiet,
                held=held,
                holding=name in waiting,
            )

    def close(self) -> None:
        """
        The member stops: close every link and every connection, those still
        in their handshake too.
        """
        for link in self.links.values():
            link.close()
        for factory in self._factories:
            for proto in list(factory.live):
                proto.close()
