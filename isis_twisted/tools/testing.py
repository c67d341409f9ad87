"""
Helpers for tests, ours and users': a whole group of nodes in one reactor.

L{LocalGroup} starts n L{MulticastNode}s on loopback TCP with ports chosen
by the system, records every member's deliveries and checks them with the
history checker.  It needs a running reactor (trial's, or pytest-twisted's).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
)
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.core.checker import CheckResult, check
from isis_twisted.core.engine import Delivery, Record, StreamPosition, ViewChange
from isis_twisted.interfaces import IDeliveryHandler, IDurableHandler, IViewHandler
from isis_twisted.net.node import MulticastNode


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


def port_of(ports: Mapping[str, int], name: str) -> Callable[[], int]:
    """
    A L{LinkProxy} target: member C{name}'s port, looked up when needed.
    """
    return lambda: ports[name]


class _Pipe(Protocol):
    """
    One side of a proxied connection.
    """

    def __init__(self, proxy: LinkProxy) -> None:
        self.proxy = proxy
        self.other: _Pipe | None = None
        self.waiting: list[bytes] = []
        self._later: Any = None

    def dataReceived(self, data: bytes) -> None:
        # Bytes go through `waiting` whenever anything is held back, so
        # that they always leave in the order they came.
        proxy = self.proxy
        if self.other is None or proxy.stalled or proxy.delay or self.waiting:
            self.waiting.append(data)
        else:
            self.other.transport.write(data)  # type: ignore[union-attr]
            return
        if self.proxy.delay and self._later is None and not self.proxy.stalled:
            self._later = self.proxy.reactor.callLater(self.proxy.delay, self._due)

    def _due(self) -> None:
        self._later = None
        self.flush()

    def flush(self) -> None:
        if self.other is not None and self.waiting and not self.proxy.stalled:
            self.other.transport.write(b"".join(self.waiting))  # type: ignore[union-attr]
            self.waiting = []

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.proxy.pipes.discard(self)
        if self._later is not None and self._later.active():
            self._later.cancel()
        self._later = None
        if self.other is not None and self.other.transport is not None:
            self.other.transport.loseConnection()


class _Accepting(_Pipe):
    def connectionMade(self) -> None:
        proxy = self.proxy
        if proxy.cut_off:
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        proxy.pipes.add(self)
        out = _Pipe(proxy)
        out.other = self
        endpoint = TCP4ClientEndpoint(proxy.reactor, "127.0.0.1", proxy.target())
        connectProtocol(endpoint, out).addCallbacks(self._joined, self._failed)

    def _joined(self, out: _Pipe) -> None:
        if self.transport is None or self.proxy.cut_off:
            out.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.other = out
        self.proxy.pipes.add(out)
        if not self.proxy.stalled:
            self.flush()

    def _failed(self, reason: Failure) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]


class LinkProxy:
    """
    A TCP forwarder on loopback between one member and another, that a test
    can cut (connections aborted, new ones refused), stall (bytes held, not
    lost, so both ends hear nothing), slow (every byte delayed), half-close
    (the dialed side's reading end closed while the other way stays open)
    and heal.

    @ivar pipes: The live proxied connections' sides.
    """

    def __init__(self, reactor: Any, target: Callable[[], int]) -> None:
        """
        @param reactor: A reactor providing TCP.
        @param target: Gives the port to forward to, when a connection comes.
        """
        self.reactor = reactor
        self.target = target
        self.cut_off = False
        self.stalled = False
        self.delay = 0.0
        self.pipes: set[_Pipe] = set()
        self.port: Any = None

    async def listen(self) -> int:
        """
        Start listening on a free loopback port; return it.
        """
        factory = Factory.forProtocol(lambda: _Accepting(self))
        self.port = await TCP4ServerEndpoint(
            self.reactor, 0, interface="127.0.0.1"
        ).listen(factory)
        return int(self.port.getHost().port)

    def cut(self) -> None:
        """
        Abort every connection through the proxy and refuse new ones.
        """
        self.cut_off = True
        for pipe in list(self.pipes):
            if pipe.transport is not None:
                pipe.transport.abortConnection()  # type: ignore[attr-defined]

    def stall(self) -> None:
        """
        Hold every byte from now on, in both directions, without closing.
        """
        self.stalled = True

    def slow(self, delay: float) -> None:
        """
        Delay every byte by C{delay} seconds from now on, keeping order.
        """
        self.delay = delay

    def half_close(self) -> None:
        """
        Close the write side towards the dialed member on every current
        connection: it reads end-of-file while it can still write back.
        """
        for pipe in list(self.pipes):
            if not isinstance(pipe, _Accepting) and pipe.transport is not None:
                pipe.transport.loseWriteConnection()  # type: ignore[attr-defined]

    def heal(self) -> None:
        """
        Forward again at full speed; bytes held meanwhile go through first.
        """
        self.cut_off = False
        self.stalled = False
        self.delay = 0.0
        for pipe in list(self.pipes):
            pipe.flush()

    async def close(self) -> None:
        """
        Stop listening and abort what is left.
        """
        self.cut()
        if self.port is not None:
            await self.port.stopListening()


@implementer(IViewHandler)
class RecordingHandler:
    """
    A delivery handler that keeps every record, for tests.

    @ivar records: Every record delivered, in order.
    @ivar stream: Every record and view change, in order.
    @ivar closed: Whether the node closed it.
    """

    def __init__(self) -> None:
        self.records: list[Delivery] = []
        self.stream: list[Record] = []
        self.closed = False

    def deliver(self, record: Delivery) -> None:
        self.records.append(record)
        self.stream.append(record)

    def view_changed(self, change: ViewChange) -> None:
        self.stream.append(change)

    def close(self) -> None:
        self.closed = True


@implementer(IDurableHandler)
class DurableRecorder(RecordingHandler):
    """
    A L{RecordingHandler} that says where it stopped, as a durable handler
    does: given to a member's next incarnation, it is that member's file
    surviving a restart.
    """

    def position(self) -> StreamPosition:
        """
        The last delivery and view change recorded.
        """
        return StreamPosition().advanced(self.stream)


class LocalGroup:
    """
    A group of nodes in one reactor, on loopback TCP.

    @ivar nodes: Every member's node, by name.
    @ivar recorders: Every member's L{RecordingHandler}, by name.
    @ivar ports: Every member's listening port, once it listens.
    @ivar proxies: With C{proxied}, the L{LinkProxy} every member dials
        every other member through, by C{(dialer, dialed)}.
    """

    def __init__(
        self,
        reactor: Any,
        names: Sequence[str],
        proxied: bool = False,
        durable: bool = False,
        **options: Any,
    ) -> None:
        """
        @param reactor: A reactor providing L{IReactorTCP} and
            L{IReactorTime}.
        @param names: The members' names.
        @param proxied: Route every member's dials through a L{LinkProxy} of
            its own, so that tests can cut and stall single links.
        @param durable: Record with L{DurableRecorder}s.
        @param options: Passed to every L{MulticastNode}.
        """
        self.reactor = reactor
        self._options = options
        self.ports: dict[str, int] = {}
        self.proxied = proxied
        self.proxies: dict[tuple[str, str], LinkProxy] = {}
        self._dial_ports: dict[str, int] = {} if proxied else self.ports
        kind = DurableRecorder if durable else RecordingHandler
        self.recorders: dict[str, RecordingHandler] = {name: kind() for name in names}
        self.nodes = {
            name: MulticastNode(
                name,
                {
                    peer: LateBoundEndpoint(
                        reactor,
                        self._dial_ports,
                        f"{name}>{peer}" if proxied else peer,
                    )
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
        # What `twistd isis --peers` gives every member: its peers'
        # addresses as endpoint descriptions, which members that join at
        # run time are told.  The ports are known only now.
        for name, node in self.nodes.items():
            node.membership.addresses.learn(
                (peer, self.address(peer)) for peer in self.nodes if peer != name
            )
        if self.proxied:
            for src in self.nodes:
                for dst in self.nodes:
                    if src != dst:
                        proxy = LinkProxy(self.reactor, port_of(self.ports, dst))
                        self._dial_ports[f"{src}>{dst}"] = await proxy.listen()
                        self.proxies[(src, dst)] = proxy

    def isolate(self, name: str) -> None:
        """
        Cut every link to and from member C{name} (needs C{proxied}).
        """
        for (src, dst), proxy in self.proxies.items():
            if name in (src, dst):
                proxy.cut()

    def heal(self) -> None:
        """
        Let every link through again.
        """
        for proxy in self.proxies.values():
            proxy.heal()

    async def restart(
        self,
        name: str,
        handler: RecordingHandler | None = None,
        more: Sequence[IDeliveryHandler] = (),
        **options: Any,
    ) -> MulticastNode:
        """
        Stop member C{name} and start it again as a new incarnation at the
        same address, with C{handler} (by default a new recorder) and then
        the handlers C{more}, and the group's options overridden by
        C{options}.
        """
        old = self.nodes[name]
        await old.stopService()
        recorder = handler if handler is not None else RecordingHandler()
        self.recorders[name] = recorder
        peers = {
            peer: LateBoundEndpoint(
                self.reactor,
                self._dial_ports,
                f"{name}>{peer}" if self.proxied else peer,
            )
            for peer in self.nodes
            if peer != name
        }
        node = MulticastNode(
            name,
            peers,
            f"tcp:{self.ports[name]}:interface=127.0.0.1",
            self.reactor,
            handlers=[recorder, *more],
            **{**self._options, **options},
        )
        self.nodes[name] = node
        node.startService()
        await node.listening
        return node

    def address(self, name: str) -> str:
        """
        Where member C{name} listens, as an endpoint description.
        """
        return f"tcp:host=127.0.0.1:port={self.ports[name]}"

    async def join(
        self, name: str, via: Sequence[str], durable: bool = False, **options: Any
    ) -> MulticastNode:
        """
        Start a new member C{name} that joins the running group through the
        members C{via} (C{--join}), with a new recorder (a
        L{DurableRecorder} with C{durable}: it catches up on the whole
        stream first).
        """
        recorder = DurableRecorder() if durable else RecordingHandler()
        self.recorders[name] = recorder
        # Its port chosen first: the address it gives must be known.
        (port,) = free_ports(1)
        self.ports[name] = port
        node = MulticastNode(
            name,
            {},
            f"tcp:{port}:interface=127.0.0.1",
            self.reactor,
            handlers=[recorder],
            join=[self.address(v) for v in via],
            advertise=self.address(name),
            **{**self._options, **options},
        )
        self.nodes[name] = node
        node.startService()
        await node.listening
        return node

    async def stop(self) -> None:
        """
        Stop every node (and proxy).
        """
        await gatherResults([n.stopService() for n in self.nodes.values()])
        for proxy in self.proxies.values():
            await proxy.close()

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


def settled_records(path: Path) -> list[dict[str, Any]]:
    """
    L{agreed_records} up to the last delivery: the view changes after it
    are those of a group whose members stop one after another (each that
    stops leaves, and those still up install views without it), which
    differ from member to member.
    """
    records = agreed_records(path)
    while records and "sender" not in records[-1]:
        records.pop()
    return records


def agreed_records(path: Path) -> list[dict[str, Any]]:
    """
    A C{jsonl:} file's records, each without C{after} (which only its
    sender has): what every member's file must hold alike.
    """
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("after", None)
        out.append(record)
    return out
