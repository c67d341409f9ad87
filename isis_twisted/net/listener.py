"""
Where a member listens for the connections its peers dial to it:
L{PeerListener} listens on the member's endpoint, in TLS if the group uses
it, says where, and stops listening when the member stops (a member started
again listens anew).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from isis_twisted.net.certs import server_factory

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode


class PeerListener:
    """
    One member's listening port for its peers.

    @ivar listening: Fires with the listening port once the member listens
        (or fails if it cannot); made afresh when the member stops.
    """

    def __init__(
        self,
        node: MulticastNode,
        log: Logger,
        listen: str | IStreamServerEndpoint | None,
    ) -> None:
        """
        @param node: The member: it makes the factory for the connections.
        @param log: The member's logger: what is said here is the member's.
        @param listen: Where to listen: an endpoint description, an
            endpoint, or L{None} for a member whose caller listens itself.
        """
        self._node = node
        self._log = log
        self._listen = listen
        self._port: IListeningPort | None = None
        self._listen_started = False
        self.listening: Deferred[IListeningPort] = Deferred()

    def start(self) -> None:
        """
        Listen for peers, unless the member listens already or was given
        nowhere to.
        """
        if self._listen is None or self._listen_started:
            return
        self._listen_started = True
        node = self._node
        server = (
            serverFromString(node.clock, self._listen)
            if isinstance(self._listen, str)
            else self._listen
        )
        factory: Any = node.peer_factory()
        if node.tls is not None:
            factory = server_factory(node.tls, factory)
        server.listen(factory).addCallbacks(self._listened, self._listen_failed)

    def _listened(self, port: IListeningPort) -> None:
        self._port = port
        self._log.info(
            "member {me!r} of group {group!r} listening on {address}; peers: {peers}",
            me=self._node.me,
            group=self._node.group,
            address=port.getHost(),
            peers=", ".join(self._node.links) or "none",
        )
        self.listening.callback(port)

    def _listen_failed(self, failure: Failure) -> None:
        # error, not critical: before logging starts, critical events go to
        # stderr, which would say it twice beside the runner's own sentence.
        self._log.error(
            "member {me!r} cannot listen on {where}: {error}",
            me=self._node.me,
            where=self._listen,
            error=failure.getErrorMessage(),
        )
        self.listening.errback(failure)

    def stop(self) -> Deferred[None] | None:
        """
        Stop listening.

        @return: Fires once the port is closed, if it was open and closing
            takes time.
        """
        closing: Deferred[None] | None = None
        if self._port is not None:
            closing = self._port.stopListening()
            self._port = None
        # A stopped node can be started again, with its state: it listens
        # anew and its peers take it back as the same incarnation.
        self._listen_started = False
        self.listening = Deferred()
        return closing
