"""
One connection between two members: the Twisted protocol over a link's
rules.

A L{PeerProtocol} frames bytes, runs the handshake as its
L{ConnectionState} and the checks of L{HelloPolicy} direct, and hands its
link (L{isis_twisted.net.link.PeerLink}) the frames that passed.

Everything a peer can get wrong (bytes that are no frame, another group, a
name that is no member, a restarted member, a handshake that never comes)
ends in a log line that says who, from where and what, a counted rejection
and a closed connection; the node goes on serving its other peers.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IPushProducer,
    IReactorTime,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.core.control import ControlFrame
from isis_twisted.core.engine import ProtocolError
from isis_twisted.core.framing import LENGTH, FrameReader, TooLong
from isis_twisted.core.handshake import (
    HANDSHAKE_MAX_FRAME,
    WRONG_PORT_CODE,
    amp_box,
    amp_tag,
    looks_like_amp,
)
from isis_twisted.core.linkrules import (
    ConnectionState,
    LinkError,
    Phase,
    Route,
)
from isis_twisted.core.wire import (
    REFUSE,
    REFUSED_OTHER,
    Ack,
    Auth,
    Data,
    Hello,
    Refuse,
    Who,
    WireError,
    decode_any,
    encode_refuse,
)
from isis_twisted.net.handshaking import Handshake
from isis_twisted.net.link import LinkOwner, PeerLink

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

__all__ = [
    "CLOSE_GRACE",
    "REPEAT_INTERVAL",
    "PeerFactory",
    "PeerProtocol",
    "RepeatFilter",
    "describe_address",
]

CLOSE_GRACE = 5.0
"""
Seconds a closing connection has to send what it still holds (a REFUSE, the
last frames) before it is aborted.
"""

_CLOSED = Phase.CLOSED
_HELD = Phase.HELD

REPEAT_INTERVAL = 60.0
"""
Seconds during which a refusal like one already logged (same peer, host and
reason) is only counted; the next one after that is logged with the count.
"""


class RepeatFilter:
    """
    Decides which of many alike log lines to write: the first of each kind,
    then, for as long as they keep coming, one every L{REPEAT_INTERVAL}
    seconds with how many were left out.  A peer that redials every second
    with the wrong group's name makes one line a minute, not sixty; every
    one of them is still counted in the node's status.

    @ivar interval: The seconds between two lines of one kind.
    """

    def __init__(self, clock: IReactorTime, interval: float = REPEAT_INTERVAL) -> None:
        self._clock = clock
        self.interval = interval
        # kind -> (when it was last logged, how many since were not)
        self._kinds: dict[tuple[str, ...], tuple[float, int]] = {}

    def admit(self, *kind: str) -> int | None:
        """
        Note one more event of C{kind}.

        @return: L{None} if it is not to be logged, else how many events of
            that kind were left out since the last line (0 for the first).
        """
        now = self._clock.seconds()
        last = self._kinds.get(kind)
        if last is None:
            self._kinds[kind] = (now, 0)
            return 0
        logged, skipped = last
        if now - logged < self.interval:
            self._kinds[kind] = (logged, skipped + 1)
            return None
        self._kinds[kind] = (now, 0)
        return skipped


def _host(address: str) -> str:
    """
    The host part of a L{describe_address} result: the port of an accepted
    connection changes with every dial, so repeats are told by host.
    """
    head, colon, port = address.rpartition(":")
    return head if colon and port.isdecimal() else address


def describe_address(address: IAddress | None) -> str:
    """
    A short, readable form of a connection's address, for log lines.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    name = getattr(address, "name", None)
    if name:
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name}"
    return str(address) if address is not None else "an unknown address"


@implementer(IPushProducer)
class PeerProtocol(Int32StringReceiver):
    """
    One connection between two members.

    The dialing side sends HELLO at once; the accepting side checks it and
    answers with its own HELLO (or REFUSE).  After that, the dialer sends
    DATA and the acceptor sends ACK.

    @ivar peer: The peer's name once the handshake named it.
    """

    transport: ITransport
    _log = Logger()

    def __init__(self, owner: LinkOwner, dial: PeerLink | None = None) -> None:
        """
        @param owner: The node.
        @param dial: The link this connection was dialed for, or L{None} for
            an accepted connection.
        """
        self.owner = owner
        self.dialed = dial
        self.link: PeerLink | None = None
        self.peer: str | None = dial.name if dial is not None else None
        self.state = ConnectionState(dialed=dial is not None)
        self.handshake = Handshake(self)
        self._timeout: IDelayedCall | None = None
        self.MAX_LENGTH = HANDSHAKE_MAX_FRAME
        now = owner.clock.seconds()
        self.last_sent = now
        self.last_received = now
        self.blocked_since: float | None = None
        # Whether this side paused its transport's reading (while held).
        self._paused = False
        self._grace: IDelayedCall | None = None
        self._reader = FrameReader()
        # For a dialed connection: whether its link has counted it as
        # refused, and whether the peer has served it (see PeerLink.refusals).
        self._refusal_counted = False
        self._served = False

    @property
    def address(self) -> str:
        """
        The other end's address, for log lines.
        """
        return describe_address(self.transport.getPeer())

    def connectionMade(self) -> None:
        # As a producer, the transport tells this protocol when its write
        # buffer is full (the peer reads nothing) and when it drains.
        self.transport.registerProducer(self, True)  # type: ignore[attr-defined]
        # Frames are already batched per turn; Nagle's algorithm would only
        # hold small ones (acknowledgements) back and add latency.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        self._timeout = self.owner.clock.callLater(
            self.owner.handshake_timeout, self._timed_out
        )
        self.handshake.start()

    def _timed_out(self) -> None:
        self._timeout = None
        self.handshake.timed_out()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        # Off hold first: the hold is what says which link holds it.
        self.handshake.unhold()
        self.state.close()
        if self._grace is not None and self._grace.active():
            self._grace.cancel()
        self._grace = None
        factory = getattr(self, "factory", None)
        if isinstance(factory, PeerFactory):
            factory.live.discard(self)
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self.link is not None:
            self.link.connection_lost(self)
        dialed = self.dialed
        if dialed is not None and not self.state.opened and not self._refusal_counted:
            self._refusal_counted = True
            dialed.dial_failed()

    # -- sending ------------------------------------------------------------

    def send_raw(self, frame: bytes) -> None:
        """
        Send one encoded frame.
        """
        if not self.state.closed:
            self.transport.writeSequence([LENGTH.pack(len(frame)), frame])
            self.last_sent = self.owner.clock.seconds()
            link = self.link
            if link is not None:
                link.frames_out += 1
                link.bytes_out += len(frame) + 4

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is full: the peer is not reading.
        """
        if self.blocked_since is None:
            self.blocked_since = self.owner.clock.seconds()

    def resumeProducing(self) -> None:
        """
        The transport's write buffer drained.
        """
        self.blocked_since = None

    def stopProducing(self) -> None:
        """
        The transport is going away; L{connectionLost} follows.
        """

    @property
    def is_open(self) -> bool:
        """
        Whether the handshake is done and the connection not closing.
        """
        return self.state.is_open

    def send_data(self, head: bytes, body: bytes) -> bool:
        """
        Send one DATA frame given as its link head and shared body.

        @return: Whether it was written (not if the connection is closing).
        """
        if self.state.closed:
            return False
        self.transport.writeSequence([LENGTH.pack(len(head) + len(body)), head, body])
        self.last_sent = self.owner.clock.seconds()
        link = self.link
        if link is not None:
            link.frames_out += 1
            link.bytes_out += len(head) + len(body) + 4
        return True

    def drop(
        self,
        reason: str,
        refuse: bool = False,
        count: bool = True,
        code: int = REFUSED_OTHER,
    ) -> None:
        """
        Log why this connection is dropped, count it and close it.

        @param reason: What was wrong, in plain words.
        @param refuse: Tell the peer why (REFUSE) before closing; otherwise
            abort at once, reading nothing more.
        @param count: Count it as a rejected connection (not for a
            connection that merely went quiet).
        @param code: The REFUSE's code (C{REFUSED_*} in L{isis_twisted.core.wire}).
        """
        if self.state.closed:
            return
        self.handshake.unhold()
        self.state.close()
        who = f"member {self.peer!r}" if self.peer else "a connection"
        self._warn(
            "drop",
            who,
            reason,
            "dropped {who} from {address}: {reason}{more}",
            peer=self.peer,
        )
        if count:
            self.owner.rejected(self.address, self.peer, reason)
        if refuse:
            refusal = encode_refuse(Refuse(reason, code))
            self.transport.writeSequence([LENGTH.pack(len(refusal)), refusal])
            self.close()
        else:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # -- receiving ----------------------------------------------------------

    @property
    def unframed(self) -> bytes:
        """
        The bytes received of a frame that is not yet whole.
        """
        return self._reader.unframed

    def dataReceived(self, data: bytes) -> None:
        """
        Take the frames that arrived (see L{FrameReader}), one at a time:
        each may change what the next one may be, or how long it may be.
        """
        state = self.state
        if state.closed:
            # Closing: nothing more is read, and nothing is buffered.
            return
        # Any bytes are a sign of life: a large frame on a slow link takes
        # a while to arrive whole.
        self.last_received = self.owner.clock.seconds()
        reader = self._reader
        reader.feed(data)
        if state.held:
            self._held_data()
            return
        while (frame := reader.next(self.MAX_LENGTH)) is not None:
            if isinstance(frame, TooLong):
                if (
                    frame.first
                    and not state.dialed
                    and state.phase is Phase.GREETING
                    and state.hello is None
                    and looks_like_amp(frame.start)
                ):
                    self._client_on_peer_port(frame.start)
                else:
                    self.lengthLimitExceeded(frame.length)
                return
            self.stringReceived(frame)
            phase = state.phase
            if phase is _CLOSED:
                reader.discard()
                return
            if phase is _HELD:
                # The HELLO just read put this connection on hold.
                reader.rescan()
                if reader.buffered:
                    self._held_data()
                return

    def _held_data(self) -> None:
        """
        Bytes arrived on a held connection.  They wait, unread, until it is
        served, except a REFUSE as the first frame (the dialer refused this
        side's answer), which is taken at once.  Past
        L{HANDSHAKE_MAX_FRAME} bytes the transport is paused, so a held
        connection buffers little.
        """
        reader = self._reader
        first = reader.peek(HANDSHAKE_MAX_FRAME)
        if first is not None and first[1:2] == bytes([REFUSE]):
            self.stringReceived(first)
            return
        if reader.buffered > HANDSHAKE_MAX_FRAME and not self._paused:
            self._paused = True
            self.transport.pauseProducing()  # type: ignore[attr-defined]

    def close(self) -> None:
        """
        Close the connection once what was written is sent, and abort it if
        that has not happened within L{CLOSE_GRACE} seconds.
        """
        self.handshake.unhold()
        self.state.close()
        # A transport (TLS in particular) does not start closing while a
        # producer is registered with it.
        # Test transports raise when no producer is registered; that is fine.
        with contextlib.suppress(RuntimeError):
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
        self.transport.loseConnection()
        if self._grace is None:
            self._grace = self.owner.clock.callLater(CLOSE_GRACE, self._abort)

    def _abort(self) -> None:
        self._grace = None
        self.transport.abortConnection()  # type: ignore[attr-defined]

    def lengthLimitExceeded(self, length: int) -> None:
        self.drop(
            f"frame of {length} bytes is over the limit of {self.MAX_LENGTH} bytes"
        )

    def stringReceived(self, string: bytes) -> None:
        if self.state.phase is _CLOSED:
            return
        if self.link is not None:
            self.link.bytes_in += len(string) + 4
            # dataReceived noted the time these bytes came.
            self.link.last_heard = self.last_received
        try:
            frame = decode_any(string)
        except WireError as e:
            self.drop(f"malformed frame: {e}")
            return
        route = self.state.route(frame)
        try:
            if route is Route.DATA:
                assert isinstance(frame, Data)
                self._data(frame)
            elif route is Route.ACK:
                assert isinstance(frame, Ack) and self.link is not None
                self.link.acknowledged(frame.ack)
                if not self._served and self.dialed is not None:
                    self._served = True
                    self.dialed.dial_served()
            elif route is Route.CONTROL:
                assert isinstance(frame, ControlFrame)
                self._control(frame)
            elif route is Route.HELLO:
                assert isinstance(frame, Hello)
                self.handshake.hello(frame)
            elif route is Route.AUTH:
                assert isinstance(frame, Auth)
                self.handshake.authenticate(frame)
            elif route is Route.WHO:
                assert isinstance(frame, Who)
                self.handshake.who(frame)
            elif route is Route.REFUSED:
                assert isinstance(frame, Refuse)
                self._refused(frame)
            else:
                self.drop(route.reason, refuse=route.refuse)
        except (LinkError, ProtocolError) as e:
            self.drop(str(e))

    def _refused(self, frame: Refuse) -> None:
        reason = frame.reason
        self.close()
        dialed = self.dialed
        if dialed is not None and not self._refusal_counted:
            self._refusal_counted = True
            dialed.dial_refused(frame.code, reason)
        who = f"member {self.peer!r}" if self.peer else "a peer"
        self._warn(
            "refused",
            who,
            reason,
            "{who} at {address} refused this node: {reason}{more}",
            code=frame.code,
        )

    def _warn(
        self, kind: str, who: str, reason: str, line: str, **fields: object
    ) -> None:
        """
        Log C{line} about C{who} unless one like it (same kind, who, host and
        reason) was logged lately (see L{RepeatFilter}).
        """
        skipped = self._repeats.admit(kind, who, _host(self.address), reason)
        if skipped is not None:
            self._log.warn(
                line,
                me=self.owner.me,
                who=who,
                address=self.address,
                reason=reason,
                more=_more(skipped),
                repeats=skipped,
                **fields,
            )

    @property
    def _repeats(self) -> RepeatFilter:
        """
        The filter for this connection's log lines: its factory's, so that
        it outlives the connection (a redial is a new connection).
        """
        factory = getattr(self, "factory", None)
        if isinstance(factory, PeerFactory):
            return factory.repeats
        return RepeatFilter(self.owner.clock)

    def _client_on_peer_port(self, data: bytes) -> None:
        """
        A client of the client API (AMP: the C{isis} command, an
        application) dialed the peer port.  Say so, in the log and to the
        client: its first command fails with L{WRONG_PORT_CODE} and a
        sentence it can show, instead of a connection lost for no reason.
        """
        reason = (
            f"a client (AMP, such as the isis command) connected to the peer port"
            f" of member {self.owner.me!r}; clients connect to its --client-port"
        )
        tag = amp_tag(data)
        if tag is not None:
            self.transport.write(
                amp_box(
                    {
                        b"_error": tag,
                        b"_error_code": WRONG_PORT_CODE,
                        b"_error_description": reason.encode("utf-8"),
                    }
                )
            )
        self.state.close()
        skipped = self._repeats.admit("client", _host(self.address))
        if skipped is not None:
            self._log.warn(
                "member {me!r} refused a connection from {address}: {reason}{more}",
                me=self.owner.me,
                address=self.address,
                reason=reason,
                more=_more(skipped),
                repeats=skipped,
            )
        self.owner.rejected(self.address, None, reason)
        self.close()

    def opened(self, link: PeerLink) -> None:
        """
        The handshake is done: frames go to and from C{link}, up to the
        node's frame limit.
        """
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        self.link = link
        self.state.open()
        self.MAX_LENGTH = self.owner.max_frame
        link.last_heard = self.owner.clock.seconds()

    def resume_reading(self) -> None:
        """
        Read again from a transport paused while the connection was held.
        """
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()  # type: ignore[attr-defined]

    def read_held(self) -> None:
        """
        Take the frames that arrived while the connection was held.
        """
        self._reader.rescan()
        self.dataReceived(b"")

    def release(self) -> None:
        """
        This node's dial reached the member this held connection claims:
        serve it if it comes from the same process, else refuse it (see
        L{Handshake.release}).
        """
        self.handshake.release()

    def _data(self, data: Data) -> None:
        link = self.link
        assert link is not None
        if link.inbound is not self:
            return
        link.frames_in += 1
        link.last_heard = self.owner.clock.seconds()
        frame = link.data_received(data)
        if frame is not None:
            self.owner.frame_received(link.name, frame)
            link.accepted(data.seq)

    def _control(self, frame: ControlFrame) -> None:
        link = self.link
        assert link is not None
        if link.inbound is not self:
            return
        link.frames_in += 1
        link.last_heard = self.owner.clock.seconds()
        if link.in_order(frame.seq, frame.ack):
            self.owner.control_received(link.name, frame.message)
            link.accepted(frame.seq)


def _more(skipped: int) -> str:
    """
    The tail of a repeated log line: how many like it were left out.
    """
    if not skipped:
        return ""
    return f" (and {skipped} more like it in the last {REPEAT_INTERVAL:g} s)"


class PeerFactory(Factory):
    """
    Builds L{PeerProtocol}s: for accepted connections when C{dial} is
    L{None}, else for the connections dialed to that link's peer.

    Not noisy: a dialing factory starts and stops with every redial, and
    Twisted's "Starting factory <...>" lines said neither who nor why.

    @ivar repeats: Keeps its connections' repeated refusals out of the log.
    """

    noisy = False

    def __init__(self, owner: LinkOwner, dial: PeerLink | None = None) -> None:
        self.owner = owner
        self.dial = dial
        self.live: set[PeerProtocol] = set()
        self.repeats = RepeatFilter(owner.clock)

    def logPrefix(self) -> str:
        """
        How Twisted names this factory in its own lines ("... starting on
        9001"): by member, not by class.
        """
        if self.dial is not None:
            return f"member {self.owner.me!r} dialing {self.dial.name!r}"
        return f"member {self.owner.me!r} peer port"

    def buildProtocol(self, addr: IAddress | None) -> PeerProtocol:
        proto = PeerProtocol(self.owner, self.dial)
        proto.factory = self
        self.live.add(proto)
        return proto
