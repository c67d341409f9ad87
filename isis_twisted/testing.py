"""
Helpers for tests, ours and users': a whole group of nodes in one reactor.

L{LocalGroup} starts n L{MulticastNode}s on loopback TCP with ports chosen
by the system, records every member's deliveries and checks them with the
history checker.  It needs a running reactor (trial's, or pytest-twisted's).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from zope.interface import implementer

from isis_twisted.checker import CheckResult, check
from isis_twisted.engine import Delivery
from isis_twisted.interfaces import IDeliveryHandler
from isis_twisted.node import MulticastNode


@implementer(IStreamClientEndpoint)
class LateBoundEndpoint:
    """
    A loopback TCP client endpoint whose port is looked up at each dial, so
    a group can be wired before its members' ports are known.

    Until the port is known, dialling fails as a refused connection would,
    and the node's redialling tries again later.
    """

    def __init__(self, reactor: IReactorTCP, ports: dict[str, int], name: str) -> None:
        """
        @param reactor: The reactor to dial with.
        @param ports: Member name to listening port, filled in as members
            start listening.
        @param name: The member this endpoint reaches.
        """
        self._reactor = reactor
        self._ports = ports
        self._name = name

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        port = self._ports.get(self._name)
        if port is None:
            return Deferred.fromCoroutine(_refused())
        endpoint = TCP4ClientEndpoint(self._reactor, "127.0.0.1", port, timeout=5)
        return endpoint.connect(protocolFactory)


async def _refused() -> IProtocol:
    raise ConnectionRefusedError("member not listening yet")


@implementer(IDeliveryHandler)
class RecordingHandler:
    """
    A delivery handler that keeps every record, for tests.

    @ivar records: Every record delivered, in order.
    @ivar closed: Whether the node closed it.
    """

    def __init__(self) -> None:
        self.records: list[Delivery] = []
        self.closed = False

    def deliver(self, record: Delivery) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True


class LocalGroup:
    """
    A group of nodes in one reactor, on loopback TCP.

    @ivar nodes: Every member's node, by name.
    @ivar recorders: Every member's L{RecordingHandler}, by name.
    @ivar ports: Every member's listening port, once it listens.
    """

    def __init__(
        self,
        reactor: Any,
        names: Sequence[str],
        **options: Any,
    ) -> None:
        """
        @param reactor: A reactor providing L{IReactorTCP} and
            L{IReactorTime}.
        @param names: The members' names.
        @param options: Passed to every L{MulticastNode}.
        """
        self.reactor = reactor
        self.ports: dict[str, int] = {}
        self.recorders = {name: RecordingHandler() for name in names}
        self.nodes = {
            name: MulticastNode(
                name,
                {
                    peer: LateBoundEndpoint(reactor, self.ports, peer)
                    for peer in names
                    if peer != name
                },
                "tcp:0:interface=127.0.0.1",
                reactor,
                handlers=[self.recorders[name]],
                **options,
            )
            for name in names
        }

    async def start(self) -> None:
        """
        Start every node and wait until each listens.
        """
        for node in self.nodes.values():
            node.startService()
        for name, node in self.nodes.items():
            port = await node.listening
            self.ports[name] = port.getHost().port  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """
        Stop every node.
        """
        await gatherResults([n.stopService() for n in self.nodes.values()])

    def histories(self) -> dict[str, list[Delivery]]:
        """
        Every member's deliveries so far.
        """
        return {name: r.records for name, r in self.recorders.items()}

    def check(self) -> CheckResult:
        """
        Check every member's deliveries with the history checker.
        """
        return check(self.histories())

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 30.0, what: str = ""
    ) -> None:
        """
        Poll C{condition} every 10 ms until it holds.

        @raise TimeoutError: If it does not hold within C{timeout} seconds;
            the message includes every node's status.
        """
        await wait_until(self.reactor, condition, timeout, what, self._statuses)

    def _statuses(self) -> str:
        return "\n".join(f"{n}: {node.status()}" for n, node in self.nodes.items())

    async def all_delivered(self, count: int, timeout: float = 30.0) -> None:
        """
        Wait until every member has delivered C{count} messages.
        """
        await self.wait_until(
            lambda: all(len(r.records) >= count for r in self.recorders.values()),
            timeout,
            f"every member delivering {count} messages",
        )


def free_ports(count: int) -> list[int]:
    """
    Ports the system says are free on 127.0.0.1 now.
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


async def wait_until(
    clock: IReactorTime,
    condition: Callable[[], bool],
    timeout: float = 30.0,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> None:
    """
    Poll C{condition} every 10 ms of C{clock} until it holds.

    @raise TimeoutError: If it does not within C{timeout} seconds.
    """
    deadline = clock.seconds() + timeout
    while not condition():
        if clock.seconds() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}{detail}")
        d: Deferred[None] = Deferred()
        clock.callLater(0.01, d.callback, None)
        await d
