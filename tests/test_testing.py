"""
Tests for L{isis_twisted.tools.testing.LinkProxy}, the fault injector that the
node and fault-injection tests rely on.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from isis_twisted.tools.testing import LinkProxy, wait_until

reactor: Any = _reactor


class Sink(Protocol):
    """
    The far end: keeps what arrives, notes when it ends.
    """

    def __init__(self) -> None:
        self.data = b""
        self.ended = False

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.ended = True


class LinkProxyTests(TestCase):
    timeout = 30

    async def through(self) -> tuple[LinkProxy, Protocol, list[Sink]]:
        sinks: list[Sink] = []

        def make() -> Sink:
            sinks.append(Sink())
            return sinks[-1]

        port = reactor.listenTCP(0, Factory.forProtocol(make), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        proxy = LinkProxy(reactor, lambda: port.getHost().port)
        self.addCleanup(lambda: Deferred.fromCoroutine(proxy.close()))
        proxied = await proxy.listen()
        sender = await connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", proxied), Protocol()
        )
        await wait_until(reactor, lambda: bool(sinks), 5, "the far end to connect")
        return proxy, sender, sinks

    def test_stall_holds_and_heal_releases_in_order(self) -> Deferred[None]:
        async def go() -> None:
            proxy, sender, (sink,) = await self.through()
            sender.transport.write(b"a")  # type: ignore[union-attr]
            await wait_until(reactor, lambda: sink.data == b"a", 5, "a")
            proxy.stall()
            sender.transport.write(b"b")  # type: ignore[union-attr]
            sender.transport.write(b"c")  # type: ignore[union-attr]
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.2, pause.callback, None)
            await pause
            self.assertEqual(sink.data, b"a")
            proxy.heal()
            await wait_until(reactor, lambda: sink.data == b"abc", 5, "abc")

        return Deferred.fromCoroutine(go())

    def test_slow_delays_but_keeps_order(self) -> Deferred[None]:
        async def go() -> None:
            proxy, sender, (sink,) = await self.through()
            proxy.slow(0.3)
            start = reactor.seconds()
            sender.transport.write(b"1")  # type: ignore[union-attr]
            sender.transport.write(b"2")  # type: ignore[union-attr]
            await wait_until(reactor, lambda: sink.data == b"12", 5, "12")
            self.assertGreaterEqual(reactor.seconds() - start, 0.25)
            proxy.heal()
            sender.transport.write(b"3")  # type: ignore[union-attr]
            await wait_until(reactor, lambda: sink.data == b"123", 5, "123")

        return Deferred.fromCoroutine(go())

    def test_cut_and_half_close_end_the_far_side(self) -> Deferred[None]:
        async def go() -> None:
            proxy, _, (sink,) = await self.through()
            proxy.half_close()
            await wait_until(reactor, lambda: sink.ended, 5, "end of file")
            proxy.cut()
            # A new connection through a cut link is closed at once.
            late = Sink()
            await connectProtocol(
                TCP4ClientEndpoint(reactor, "127.0.0.1", proxy.port.getHost().port),
                late,
            )
            await wait_until(reactor, lambda: late.ended, 5, "the refused connection")

        return Deferred.fromCoroutine(go())
