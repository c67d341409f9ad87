"""
L{MulticastNode}: one member of a group, on real connections.

The node joins the pure L{Engine} to one L{PeerLink} per peer, ends every
reactor turn by flushing the engine's frames to every link (so acks are
batched: one frame per peer per turn), hands deliveries to its
L{IDeliveryHandler}s and subscribers, and fires each multicast's Deferred
once the message is delivered here.  It is an L{IService}: C{twistd} and
applications start and stop it the same way.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from isis_twisted.core.addresses import AddressBook
from isis_twisted.core.detector import FailureDetector
from isis_twisted.core.engine import (
    Delivery,
    Engine,
    Frame,
    ProtocolError,
    Record,
    StreamPosition,
    Timestamp,
    ViewChange,
)
from isis_twisted.core.membership import (
    BLOCKED,
    GROUP_LIMIT,
    JOINING,
    NORMAL,
    REMOVED,
    EngineFactory,
    Membership,
)
from isis_twisted.core.pump import HandlerPump
from isis_twisted.core.status import (
    NodeStatus,
    OldestUndelivered,
    PeerStatus,
    StuckHandler,
)
from isis_twisted.core.views import (
    Control,
    Fetch,
    FetchState,
    Leave,
    NoRecords,
    NoState,
    Records,
    StateChunk,
    Suspect,
    View,
)
from isis_twisted.core.wire import MESSAGE_OVERHEAD, Here, data_overhead, encode_body
from isis_twisted.interfaces import (
    IDeliveryHandler,
    IDurableHandler,
    IOrderedMulticast,
)
from isis_twisted.net.catchup import CatchUp
from isis_twisted.net.certs import TLSIdentity, client_endpoint, server_factory
from isis_twisted.net.connection import PeerFactory
from isis_twisted.net.discovery import Discovery, Found
from isis_twisted.net.feed import HandlerFeed
from isis_twisted.net.history import DeliveryHistory, Subscription
from isis_twisted.net.link import PeerDialer, PeerLink

PENDING_STRANGERS = 8
"""
The most links a member keeps at once for names that no view or request to
join vouches for yet (members added at run time whose first HELLO came
before their JOIN).
"""

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
"""
The default largest frame, in bytes, a node sends or accepts.
"""

DEFAULT_BUFFER = 64 * 1024 * 1024
"""
The default bound, in bytes, of each peer's resend buffer.
"""


MIN_SECRET = 16
"""
The shortest group secret accepted, in bytes.
"""


class NodeStoppedError(Exception):
    """
    The node is stopped, or stopped before the message was sent: the group
    never saw it, so it is safe to send again.
    """


class DeliveryUnknownError(Exception):
    """
    The node stopped after it had multicast the message but before it
    delivered it.  The other members may still deliver it (and so will this
    node if it is started again): sending it again may deliver it twice.
    """


class NodeRemovedError(Exception):
    """
    The member is out of the group (the others went on without it while it
    was paused, crashed or cut off): it delivers nothing more.
    """


class BackPressureError(Exception):
    """
    Too much is already waiting for room in a peer's resend buffer (a peer
    has been away long enough to fill it): the message was not taken.  Try
    again once the peer is back.
    """


class _Waiter(Protocol):
    """
    What waits for one multicast's outcome: a L{Deferred}, or a L{_Slot} of
    a batch.
    """

    def callback(self, result: Delivery, /) -> None: ...

    def errback(self, fail: BaseException, /) -> None: ...


class _Batch:
    """
    The outcomes of a batch of multicasts, gathered into one L{Deferred}.

    @ivar done: Fires with every outcome, in order, once the last settles.
    """

    __slots__ = ("_left", "_outcomes", "done")

    def __init__(self, size: int) -> None:
        self._outcomes: list[Delivery | BaseException | None] = [None] * size
        self._left = size
        self.done: Deferred[list[Delivery | BaseException]] = Deferred()
        if not size:
            self.done.callback([])

    def settle(self, position: int, outcome: Delivery | BaseException) -> None:
        """
        Message C{position} was delivered, or failed with C{outcome}.
        """
        self._outcomes[position] = outcome
        self._left -= 1
        if not self._left:
            self.done.callback([o for o in self._outcomes if o is not None])


class _Slot:
    """
    One message of a L{_Batch}: takes its outcome as a L{Deferred} would,
    for a fraction of a Deferred's cost.
    """

    __slots__ = ("_batch", "_position")

    def __init__(self, batch: _Batch, position: int) -> None:
        self._batch = batch
        self._position = position

    def callback(self, result: Delivery, /) -> None:
        self._batch.settle(self._position, result)

    def errback(self, fail: BaseException, /) -> None:
        self._batch.settle(self._position, fail)


def _order(position: StreamPosition) -> tuple[int, int]:
    return (position.index, position.view)


@implementer(IOrderedMulticast)
class MulticastNode(MultiService):
    """
    One member of a totally ordered multicast group.

    @ivar me: This member's name.
    @ivar members: Every member's name, sorted.
    @ivar group: The group's name; peers must use the same one.
    @ivar incarnation: A number drawn at random when the node was made; a
        member that restarts comes back as another incarnation.
    @ivar links: The link to every peer, by name.
    @ivar listening: Fires with the listening port once the node listens
        (or fails if it cannot).
    @ivar refused_for_good: Fires, once, with the sentence that says why
        this member can never be let in (most of its group refused it for
        its group name or secret); the node itself goes on redialling,
        backed off, and whoever runs it decides (C{twistd isis} exits).
    @ivar refused_because: That sentence, once it is known.
    """

    _log = Logger()

    def __init__(
        self,
        me: str,
        peers: Mapping[str, str | IStreamClientEndpoint],
        listen: str | IStreamServerEndpoint | None,
        reactor: IReactorTime,
        group: str = "isis",
        handlers: Iterable[IDeliveryHandler] = (),
        max_frame: int = DEFAULT_MAX_FRAME,
        max_buffer: int = DEFAULT_BUFFER,
        handshake_timeout: float = 10.0,
        history: int = 100_000,
        history_bytes: int = 64 * 1024 * 1024,
        incarnation: int | None = None,
        ack_delay: float = 0.05,
        retry_max_delay: float = 2.0,
        heartbeat: float = 1.0,
        silence: float = 5.0,
        secret: bytes | None = None,
        tls: TLSIdentity | None = None,
        engine_factory: EngineFactory = Engine,
        suspect_after: float = 3.0,
        flush_timeout: float = 1.0,
        handler_give_up: float = 60.0,
        join: Sequence[str] = (),
        advertise: str = "",
    ) -> None:
        """
        @param me: This member's name.
        @param peers: Every other member's name and how to reach it: an
            endpoint description (C{"tcp:host=10.0.0.2:port=9001"}) or an
            endpoint.
        @param listen: Where to accept peers' connections: an endpoint
            description (C{"tcp:9001:interface=127.0.0.1"}), an endpoint, or
            L{None} for a caller that listens with L{peer_factory} itself.
        @param reactor: The reactor (also the node's clock).
        @param group: The group's name.
        @param handlers: Called for every delivery, in order.
        @param max_frame: The largest frame sent or accepted, in bytes; a
            payload must fit in one frame.
        @param max_buffer: The bound of each peer's resend buffer, in bytes:
            while a peer's buffer is full, L{multicast} waits.
        @param handshake_timeout: Seconds a new connection has to complete
            its handshake.
        @param history: How many recent deliveries are kept for subscribers
            that resume from an index.
        @param history_bytes: The most payload bytes those deliveries may
            hold; older ones are dropped first.
        @param incarnation: This run's incarnation (default: random).
        @param ack_delay: Seconds to wait before acknowledging link frames
            on their own when no DATA frame carries the acknowledgement.
        @param retry_max_delay: The longest wait between redials of a peer.
        @param heartbeat: Seconds between heartbeats on an idle connection.
        @param silence: Seconds after which a peer that sent nothing is
            reported (a warning naming it, and whether delivery waits for
            it) and its quiet connections are dropped and redialled.
        @param secret: The group's pre-shared secret: every connection must
            prove it holds it (HMAC-SHA256 over fresh nonces from both
            sides) before anything else happens.  L{None}: no secret.
        @param tls: This member's certificate and the group's CA, for mutual
            TLS: every connection is wrapped in TLS, the peer's certificate
            must be signed by the CA and name the member it claims to be.
            C{listen} and C{peers} are then plain (TCP or UNIX) endpoints.
        @param engine_factory: Makes each view's ordering engine (for tests
            and benchmarks that run a variant): called as
            C{engine_factory(me, members, view=, clock=, delivered=)}.
        @param suspect_after: Seconds a member of the view may be silent on
            both connections before this member suspects it, which starts a
            view change without it.  Must be more than twice the heartbeat.
        @param flush_timeout: Seconds a step of a view change may take before
            the members that did not answer are left out too.
        @param handler_give_up: Seconds a handler may fail to keep a record
            (raise L{OSError}) before this member leaves the group rather
            than hold it; it rejoins and catches up once the handler keeps
            the record.
        @param join: To join a running group instead of starting one (then
            C{peers} is empty): where some of its members listen, endpoint
            descriptions; the node asks them who they are
            (L{isis_twisted.net.discovery}) and then asks to be added.
        @param advertise: Where this member's peers reach it, an endpoint
            description (C{"tcp:host=10.0.0.4:port=9004"}): required with
            C{join}, since no member was given it; others learn it from the
            view change that adds this member.

        @raise ValueError: If the names are unusable (see L{Engine}) or a
            limit is not positive.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        if join and peers:
            raise ValueError("a member joins a running group or names its peers")
        if join and not advertise:
            raise ValueError("a member that joins a running group needs an address")
        # Room for the largest group members can be added up to: a frame
        # must fit on every link whatever the view's size.
        overhead = data_overhead(max(1 + len(peers), GROUP_LIMIT))
        if max_frame < overhead + MESSAGE_OVERHEAD + 1:
            raise ValueError(f"max_frame of {max_frame} bytes is too small")
        if max_buffer <= 0 or history < 0 or handshake_timeout <= 0:
            raise ValueError("max_buffer, history and handshake_timeout must be > 0")
        if not 0 < 2 * heartbeat < silence:
            raise ValueError(
                "silence must be more than twice the heartbeat, so that an idle"
                " link is not taken for a silent one"
            )
        if not 2 * heartbeat < suspect_after:
            raise ValueError(
                "suspect_after must be more than twice the heartbeat, so that an"
                " idle member is not taken for a silent one"
            )
        if flush_timeout <= 0:
            raise ValueError("flush_timeout must be > 0")
        if secret is not None and len(secret) < MIN_SECRET:
            raise ValueError(f"a group secret must be at least {MIN_SECRET} bytes")
        self.secret = secret
        self.max_buffer = max_buffer
        self.tls = tls
        self.require_certificate = tls is not None
        self.me = me
        self.group = group
        self.clock = reactor
        self._reactor = reactor
        self.pump = HandlerPump(handlers, give_up_after=handler_give_up)
        self.handlers = self.pump.handlers
        self.feed = HandlerFeed(
            me, self.pump, reactor, self._pass_on, self._watch_handlers
        )
        self._durable = [h for h in self.handlers if IDurableHandler.providedBy(h)]
        # A member whose durable handlers hold records of the group's stream
        # was in the group before: it asks to be added back and catches up,
        # rather than start view 0 afresh.
        positions = [h.position() for h in self._durable]
        resume = min(positions, key=_order) if positions else None
        self._started_from = resume
        self.incarnation = (
            incarnation
            if incarnation is not None
            else int.from_bytes(os.urandom(8), "big")
        )
        self.advertise = advertise
        self.membership = Membership(
            me,
            [me, *peers],
            engine_factory,
            flush_timeout=flush_timeout,
            joining=bool(join)
            or (resume is not None and (resume.index > 0 or resume.view > 0)),
            incarnation=self.incarnation,
            addresses={n: a for n, a in peers.items() if isinstance(a, str)},
            address=advertise,
        )
        self.discovery = (
            Discovery(
                reactor,
                me,
                group,
                join,
                self._found,
                self._locked_out,
                max_delay=retry_max_delay,
            )
            if join
            else None
        )
        self._links_for: tuple[int, int, int] | None = None
        self.discovered = False
        self.members = self.membership.view.members
        self.suspect_after = suspect_after
        self.max_frame = max_frame
        self._frame_room = max_frame - overhead
        self.max_payload = self._frame_room - MESSAGE_OVERHEAD
        self.handshake_timeout = handshake_timeout
        self.links = {
            name: PeerLink(self, name, max_buffer, ack_delay) for name in sorted(peers)
        }
        self._peers = dict(peers)
        self._ack_delay = ack_delay
        self._listen = listen
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
            link.on_locked_out = self._locked_out
        self._port: IListeningPort | None = None
        self._listen_started = False
        self.listening: Deferred[IListeningPort] = Deferred()
        self._turn: IDelayedCall | None = None
        self._unflushed = 0
        self._waiting_bytes = 0
        self._pending: dict[int, _Waiter] = {}
        self._waiting: deque[tuple[bytes, _Waiter]] = deque()
        self._arrived: dict[Timestamp, float] = {}
        self.history = DeliveryHistory(
            me, history, history_bytes, self.membership.view.id
        )
        self.multicasts = 0
        self.rejections = 0
        self.handler_give_ups = 0
        # Left the group because a handler could not keep a record; it asks
        # to be added back once the handler keeps it.
        self._gave_up = False
        self.last_rejection: str | None = None
        self.stopped = False
        self.heartbeat = heartbeat
        self.silence = silence
        self._beat: LoopingCall | None = None
        self._started_at = reactor.seconds()
        self.detector = FailureDetector(suspect_after, heartbeat, self._started_at)
        self._reported: dict[str, float] = {}
        self._dialers: list[ClientService] = []
        self._factories: list[PeerFactory] = []
        self._membership_call: IDelayedCall | None = None
        self._membership_deadline: float | None = None
        self._closing_since: float | None = None
        self.last_flush: float | None = None
        self._told_removed = False
        # Started joining: said so at start.
        self._told_joining = self.membership.state == JOINING
        self._view_members = self.members
        # The last records handed out in this life, and whether this node
        # left the group when it was stopped (then it asks to be added back
        # when started again, from there).
        self.handed = StreamPosition()
        self._left = False
        self.catchup = CatchUp(self)
        self.on_fatal: Callable[[str], None] | None = None

    @property
    def caught_up(self) -> int:
        """
        Records this member was given by replay when it was added back.
        """
        return self.catchup.caught_up

    @property
    def restored_bytes(self) -> int:
        """
        Bytes of snapshots this member restored when it was added back.
        """
        return self.catchup.restored_bytes

    @property
    def cannot_catch_up(self) -> str | None:
        """
        Why this member could not catch up, once it could not.
        """
        return self.catchup.cannot_catch_up

    @property
    def engine(self) -> Engine:
        """
        The ordering engine of the current view.
        """
        return self.membership.engine

    @property
    def view(self) -> View:
        """
        The view this member is in.
        """
        return self.membership.view

    def view_at(self, index: int) -> int | None:
        """
        The id of the view the delivery with index C{index} is delivered in
        (L{None} if that is too long ago to know).
        """
        return self.history.view_at(index)

    def cannot_deliver(self) -> tuple[str, str, tuple[str, ...]] | None:
        """
        Why a message multicast now would not be delivered, as a kind
        (C{"stopped"}, C{"removed"}: for good; C{"blocked"}: until a
        majority of the view is back; C{"joining"}: until the group adds
        this member), a sentence, and the members it waits for; L{None} if
        it would be delivered, in time.
        """
        membership = self.membership
        if self.stopped:
            return ("stopped", f"member {self.me!r} is stopped", ())
        if membership.state == REMOVED:
            return ("removed", str(self._removed_error()), ())
        if membership.state == JOINING:
            return (
                "joining",
                f"member {self.me!r} is not in the group yet (it is being added)",
                (),
            )
        if membership.state == BLOCKED:
            missing = tuple(sorted(membership.suspects))
            return (
                "blocked",
                f"member {self.me!r} cannot reach a majority of its view"
                f" ({', '.join(membership.view.members)}); it waits for"
                f" {', '.join(missing) or 'a majority'} to come back",
                missing,
            )
        return None

    # -- IOrderedMulticast ------------------------------------------------

    def multicast(self, payload: bytes) -> Deferred[Delivery]:
        """
        Send C{payload} to every member, this one included.

        While any peer's resend buffer is full (that peer has been away long
        enough), the message waits in this node, unstamped, and the returned
        Deferred with it.

        @return: Fires with the delivery record once this member delivered
            the message.  Fails with L{BackPressureError} at once if more
            than C{max_buffer} bytes already wait for room; with
            L{NodeStoppedError} if the node stops before the message was
            sent (it never was: safe to send again); with
            L{DeliveryUnknownError} if it stops after the message was sent
            (it may still be delivered).
        @raise TypeError: If C{payload} is not L{bytes}.
        @raise ValueError: If C{payload} is larger than one frame can carry.
        """
        d: Deferred[Delivery] = Deferred()
        self._multicast(payload, d)
        return d

    def multicast_all(
        self, payloads: Sequence[bytes]
    ) -> Deferred[list[Delivery | BaseException]]:
        """
        Send every payload of C{payloads}, in this order, as L{multicast}
        does, with one L{Deferred} for all of them rather than one each: the
        client API's batches go through here.

        @return: Fires once every message is delivered or has failed, with
            each one's delivery record or exception (those L{multicast}
            raises or fails with), in order.
        """
        batch = _Batch(len(payloads))
        for position, payload in enumerate(payloads):
            try:
                self._multicast(payload, _Slot(batch, position))
            except (TypeError, ValueError) as e:
                batch.settle(position, e)
        return batch.done

    def _multicast(self, payload: bytes, waiter: _Waiter) -> None:
        if type(payload) is not bytes:
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        if len(payload) > self.max_payload:
            raise ValueError(
                f"payload of {len(payload)} bytes is over the limit of"
                f" {self.max_payload} bytes (raise --max-frame)"
            )
        if self.stopped:
            waiter.errback(NodeStoppedError("the node is stopped"))
            return
        if self.membership.state == REMOVED:
            waiter.errback(self._removed_error())
            return
        if self._waiting or self._full() or not self.membership.delivering:
            if self._waiting_bytes + len(payload) > self.max_buffer:
                held = [n for n in self.membership.peers if self.links[n].full]
                waiter.errback(
                    BackPressureError(
                        f"{self._waiting_bytes} bytes already wait for room in the"
                        f" resend buffer of {', '.join(held) or 'a peer'}; try"
                        " again once it is back"
                    )
                )
                return
            self._waiting.append((payload, waiter))
            self._waiting_bytes += len(payload)
        else:
            self._admit(payload, waiter)

    def _admit(self, payload: bytes, d: _Waiter) -> None:
        self._unflushed += len(payload) + MESSAGE_OVERHEAD
        stamp = self.membership.multicast(payload)
        self._pending[stamp[0]] = d
        self._arrived[stamp] = self._reactor.seconds()
        self.multicasts += 1
        self.schedule_turn()

    def _full(self) -> bool:
        # What this turn admitted is not in any buffer yet but will be in
        # all of them at its end: count it, so no turn overshoots the bound.
        # Only the view's members: a member that left keeps what it was
        # not sent, but it no longer holds anyone back.
        unflushed = self._unflushed
        links = self.links
        return any(
            links[name].unacked_bytes + unflushed >= links[name].max_buffer
            for name in self.membership.peers
        )

    def _removed_error(self) -> NodeRemovedError:
        return NodeRemovedError(
            f"{self.me!r} is out of the group: {self.membership.reason}; it"
            " delivers nothing more"
        )

    # -- LinkOwner --------------------------------------------------------

    def link_for(self, name: str) -> PeerLink | None:
        """
        The link to member C{name}, or L{None} if it is not a peer.
        """
        return self.links.get(name)

    def frame_received(self, peer: str, frame: Frame) -> None:
        """
        Feed a frame that arrived in order from C{peer} to the engine.

        @raise ProtocolError: If the engine rejects it (or the node is
            stopped and takes nothing more).
        """
        if self.stopped:
            raise ProtocolError(peer, "this node is stopped")
        now = self._reactor.seconds()
        self.membership.receive_data(peer, frame, now)
        if frame.messages and frame.view == self.membership.view.id:
            arrived = self._arrived
            for stamp, _ in frame.messages:
                arrived[(stamp, peer)] = now
        self.schedule_turn()

    def control_received(self, peer: str, message: Control) -> None:
        """
        Feed a membership control message from C{peer} to the membership.
        """
        if self.stopped:
            return
        if isinstance(message, Fetch | Records | NoRecords):
            self.catchup.transfer(peer, message)
            return
        if isinstance(message, FetchState | StateChunk | NoState):
            self.catchup.state_transfer(peer, message)
            return
        now = self._reactor.seconds()
        if isinstance(message, Leave) and message.view == self.view.id:
            self._log.warn(
                "member {peer!r} is stopping; the group goes on without it",
                peer=peer,
            )
        if isinstance(message, Suspect):
            # A suspicion of a member this node hears from is not taken up:
            # it may be old (sent while links were down, delivered once
            # they came back), and taking it up would remove a member that
            # is there.  If the member is gone, this node's own detector
            # will say so.
            names = tuple(n for n in message.names if not self._hears(n, now))
            if not names:
                return
            message = Suspect(message.view, names)
        self.membership.receive_control(peer, message, now)
        self.schedule_turn()

    def _hears(self, name: str, now: float) -> bool:
        """
        Whether member C{name} was heard from within two heartbeats (an
        idle link carries one every heartbeat).
        """
        link = self.links.get(name)
        return self.detector.hears(link.last_heard if link else None, now)

    def link_has_room(self) -> None:
        """
        Admit the multicasts that waited for room in the resend buffers (or
        for the view change to end).
        """
        self.catchup.give_more()
        membership = self.membership
        while self._waiting and membership.delivering and not self._full():
            payload, d = self._waiting.popleft()
            self._waiting_bytes -= len(payload)
            self._admit(payload, d)

    def rejected(self, address: str, peer: str | None, reason: str) -> None:
        """
        Count a refused or dropped connection.
        """
        self.rejections += 1
        who = f"{peer!r} " if peer else ""
        self.last_rejection = f"{who}from {address}: {reason}"

    # -- members added at run time ----------------------------------------

    def here(self) -> Here:
        """
        The answer to a member that asks who listens here: this member's
        name and view, the founding list and its view's addresses.
        """
        membership = self.membership
        view = membership.view
        return Here(
            self.me,
            view.id,
            tuple(sorted(self.members)),
            membership.addresses.of(view.members),
        )

    def add_peer(self, name: str, address: str) -> PeerLink | None:
        """
        Make a link to member C{name}, which the group was not started with,
        dialled at C{address}; L{None} if the group is at L{GROUP_LIMIT}.
        """
        link = self.links.get(name)
        if link is not None:
            return link
        membership = self.membership
        needed = name in membership.view.members or name in membership.joiners
        if not needed:
            # A name nobody vouches for yet (an unauthenticated HELLO in a
            # group without a secret): only a few at a time, so that
            # strangers cannot fill the table that members need.
            pending = [
                n
                for n in self.links
                if n not in self.members
                and n not in membership.view.members
                and n not in membership.joiners
            ]
            if len(self.links) + 1 >= max(GROUP_LIMIT, len(self.members)) or (
                len(pending) >= PENDING_STRANGERS
            ):
                return None
        if address:
            try:
                clientFromString(self._reactor, address)
            except Exception:
                return None
        link = PeerLink(self, name, self.max_buffer, self._ack_delay)
        link.on_locked_out = self._locked_out
        self.links[name] = link
        if address:
            self._peers[name] = address
            if self.running:
                self._dial(name, address)
        return link

    def _sync_links(self) -> None:
        """
        Give every member the membership knows of a link, and dial those
        whose address it learned: members added at run time, or, for a
        member that joined, the group's.
        """
        membership = self.membership
        book = membership.addresses
        names = {*membership.view.members, *membership.joiners}
        names.update(name for name, _ in book)
        names.discard(self.me)
        for name in sorted(names):
            address = book.get(name) or ""
            link = self.links.get(name)
            if link is None:
                self.add_peer(name, address)
            elif address and name not in self._peers:
                self._peers[name] = address
                if self.running:
                    self._dial(name, address)

    def _forget_peers(self, members: tuple[str, ...]) -> None:
        """
        Close the links of members added at run time that are neither in
        the view handed out (C{members}, which may be older than the
        membership's) nor in the current one, ask for nothing and are given
        nothing.
        """
        membership = self.membership
        keep = {
            *members,
            *membership.view.members,
            *membership.joiners,
            *self.members,
            *self.catchup.serving,
        }
        for name in [n for n in self.links if n not in keep]:
            link = self.links.pop(name)
            link.close()
            self._peers.pop(name, None)
            self.membership.addresses.forget(name)
            for service in [d for d in self._dialers if d.name == f"peer {name}"]:
                self._dialers.remove(service)
                service.disownServiceParent()
        self._links_for = None

    def _found(self, found: Found) -> None:
        """
        A member of the group to join answered: take the group's founding
        list and addresses, and ask the members of its view to be added.
        """
        here = found.here
        self.discovered = True
        self.members = tuple(sorted(here.members))
        membership = self.membership
        addresses = dict(here.addresses)
        addresses.setdefault(here.member, found.address)
        membership.addresses = AddressBook(
            self.me, self.members, addresses, self.advertise
        )
        self._links_for = None
        asking = {*self.members, *addresses, here.member, self.me}
        membership.join(self._reactor.seconds(), View(0, tuple(sorted(asking))))
        self._told_joining = True
        self.schedule_turn()

    def _locked_out(self, sentence: str) -> None:
        if self.refused_because is not None:
            return
        self.refused_because = sentence
        self._log.error("{sentence}", sentence=sentence)
        self.refused_for_good.callback(sentence)

    # -- turns ------------------------------------------------------------

    def schedule_turn(self) -> None:
        if self._turn is None and not self.stopped:
            self._turn = self._reactor.callLater(0, self._end_turn)

    def _end_turn(self) -> None:
        self._turn = None
        self._unflushed = 0
        membership = self.membership
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
        frames = membership.flush(self._frame_room, MESSAGE_OVERHEAD)
        if frames:
            peers = [link for name in membership.peers if (link := links.get(name))]
            for frame in frames:
                body = encode_body(frame)
                for link in peers:
                    link.send(frame, body)
        for name, message in membership.take_control():
            to = links.get(name)
            if to is not None:
                to.send_control(message)
        records = membership.take_deliveries()
        catchup = self.catchup
        if membership.welcome is not None and catchup.catching is None:
            catchup.welcomed()
        if catchup.behind is not None:
            # Caught up first: what the view it was added to delivers waits.
            catchup.behind.extend(records)
        elif records:
            self.hand_out(records)
        self._watch_membership()
        # Acknowledgements taken this turn may have made room that no link
        # reported (it never looked full, counting this turn's admissions).
        if self._waiting:
            self.link_has_room()
        if membership.has_output:
            self.schedule_turn()

    def hand_out(self, records: list[Record], replayed: bool = False) -> None:
        """
        Give a turn's records to the handlers, through the pump: each
        handler takes them at its own pace, and what every handler took is
        passed on (L{_pass_on}).

        @param replayed: They are what a member added to a view lacked,
            from another member; the pump gives a durable handler only what
            it lacks.
        """
        if not replayed:
            taken = self._reactor.seconds() if self._closing_since is not None else 0.0
            arrived = self._arrived
            for record in records:
                if isinstance(record, Delivery):
                    if arrived:
                        arrived.pop((record.clock, record.sender), None)
                else:
                    self._view_installed(record, taken)
        self.handed = self.handed.advanced(records)
        self.feed.put(records)

    def _pass_on(self, records: list[Record]) -> None:
        """
        Every handler took these records: pass them to the history and its
        subscribers, then fire the multicasts' Deferreds.
        """
        history = self.history
        history.extend(records)
        if history.has_subscribers:
            history.turn_done()
        # Last: a caller resumed by its multicast's Deferred finds the
        # record already in the history and taken by every handler.
        pending = self._pending
        if pending:
            me = self.me
            for record in records:
                if type(record) is Delivery and record.sender == me:
                    d = pending.pop(record.clock, None)
                    if d is not None:
                        d.callback(record)

    @property
    def handler_errors(self) -> int:
        """
        How many times handlers raised, every retry counted.
        """
        return self.pump.handler_errors

    def add_handler(self, handler: IDeliveryHandler) -> None:
        """
        Give every record from now on to C{handler} too, after the others.
        """
        self.pump.add(handler)
        self.handlers = self.pump.handlers
        if IDurableHandler.providedBy(handler):
            self._durable.append(handler)

    def _watch_handlers(self, now: float) -> None:
        """
        After each run of the pump: leave the group if a handler has been
        stuck too long, and ask to be added back once none is.
        """
        pump = self.pump
        if self._gave_up:
            self._rejoin_after_handlers()
            return
        stuck = pump.stuck
        if stuck is None:
            return
        membership = self.membership
        if membership.state in (REMOVED, JOINING) or not membership.peers:
            return
        if not (pump.given_up(now) or pump.pending > self._most_pending):
            return
        self._gave_up = True
        self.handler_give_ups += 1
        self._log.error(
            "member {me!r} leaves the group: delivery handler {handler} has not"
            " kept record {index} for {seconds:.0f} s ({reason}) and {pending}"
            " records wait for it; it asks to be added back, and catches up,"
            " once the handler keeps it",
            me=self.me,
            handler=stuck.handler,
            index=stuck.index,
            seconds=now - stuck.since,
            reason=stuck.reason,
            pending=pump.pending,
        )
        membership.leave()
        self.schedule_turn()

    @property
    def _most_pending(self) -> int:
        # As many records as the history keeps, so that a member that left
        # can still be given what it lacks when it rejoins.
        return max(self.history.size, 10_000)

    def _rejoin_after_handlers(self) -> None:
        """
        This member left because a handler was stuck: once none is and the
        group went on without it, ask to be added back.
        """
        pump = self.pump
        membership = self.membership
        if (
            pump.stuck is not None
            or pump.pending
            or membership.state != REMOVED
            or self.stopped
        ):
            return
        self._gave_up = False
        self._told_removed = False
        self._log.warn(
            "member {me!r}: its delivery handlers keep records again; it asks"
            " to be added back, from index {index}",
            me=self.me,
            index=self.handed.index,
        )
        self.catchup.forget()
        self._told_joining = True
        membership.join(self._reactor.seconds())
        self.schedule_turn()

    # -- joining and catching up ----------------------------------------

    def resume_point(self) -> StreamPosition | None:
        """
        Where this member's handlers stopped, so that a member added to a
        view catches up from there: where it stopped handing records to the
        pump if it handed any in this life (the pump gives what it still
        holds first), else the earliest of the durable handlers' positions;
        L{None} if no handler needs catching up.
        """
        handed = self.handed
        if handed.index or handed.view:
            return handed
        positions = [h.position() for h in self._durable]
        if not positions:
            return None
        return min(positions, key=_order)

    def new_incarnation(
        self, name: str, incarnation: int, untouched: bool
    ) -> str | None:
        """
        Member C{name} restarted as C{incarnation}: take its connection if
        its old incarnation is out of this member's view (the link starts
        afresh, and the new one is told the view so it asks to join) or if
        this is the incarnation a view change added, else leave the old one
        out now and refuse the connection until then.
        """
        membership = self.membership
        if membership.joined_as.get(name) == incarnation:
            return None
        if membership.state in (REMOVED, JOINING):
            return None
        if name not in membership.view.members:
            membership.send(name, membership.gone(membership.view.id))
            self.schedule_turn()
            return None
        if membership.view.id == 0 and untouched:
            return None
        if name not in membership.leaving:
            self._log.warn(
                "member {peer!r} restarted (a new incarnation): its old one is"
                " gone, so the group goes on without it and then adds it back",
                peer=name,
            )
            membership.gone_for_good(name, self._reactor.seconds())
            self.schedule_turn()
        return (
            f"member {name!r} restarted as a new incarnation; it is let in once"
            " the group has gone on without its old one"
        )

    # -- membership -------------------------------------------------------

    def _watch_membership(self) -> None:
        """
        Follow the membership's state: time a view change, say once that
        this member is out, and keep its timer at its deadline.
        """
        membership = self.membership
        now = self._reactor.seconds()
        if membership.state == REMOVED:
            if not self._told_removed:
                self._told_removed = True
                if self._gave_up:
                    self._log.warn(
                        "member {me!r} is out of the group until its delivery"
                        " handlers keep what they hold: {reason}",
                        me=self.me,
                        reason=membership.reason,
                    )
                    how = "left the group, its delivery handler stuck,"
                else:
                    self._log.error(
                        "member {me!r} is out of the group: {reason}; it delivers"
                        " nothing more (the others went on without it)",
                        me=self.me,
                        reason=membership.reason,
                    )
                    how = "was removed from the group"
                self._fail_unsent(self._removed_error())
                self._fail_sent(
                    f"{self.me!r} {how} after multicasting the message but before"
                    " delivering it; the other members may still deliver it"
                )
            if self._gave_up:
                self._rejoin_after_handlers()
        elif membership.state == JOINING:
            if not self._told_joining:
                self._told_joining = True
                self._log.warn(
                    "member {me!r} was left out of view {view} before it"
                    " delivered anything (it was paused, cut off or started"
                    " late); it asks to be added back",
                    me=self.me,
                    view=membership.view.id,
                )
            if self._pending:
                self._fail_sent(
                    f"{self.me!r} was left out of the group after multicasting the"
                    " message but before delivering it, and asks to be added"
                    " back; the other members may still deliver it"
                )
        elif membership.state != NORMAL or membership.suspects:
            if self._closing_since is None:
                self._closing_since = now
        elif not membership.engine.wedged:
            # The suspicions were dropped before any view change began: the
            # next one is timed from its own start.
            self._closing_since = None
        self.catchup.watch(membership.view)
        deadline = membership.deadline
        call = self._membership_call
        if call is not None and call.active():
            if deadline == self._membership_deadline:
                return
            call.cancel()
        self._membership_call = None
        self._membership_deadline = deadline
        if deadline is not None and not self.stopped:
            self._membership_call = self._reactor.callLater(
                max(0.0, deadline - now), self._membership_tick
            )

    def force_view(self, without: Iterable[str] | None = None) -> tuple[str, ...]:
        """
        Close a view that lost its majority for good, without the members
        that are gone (see L{Membership.force}, and "Losing the majority" in
        docs/operating.md for when this is safe).

        @param without: The members to leave out; by default every member
            this one suspects.
        @return: The members of the view proposed.
        @raise CannotForceError: If the member is not blocked, or the names
            are wrong.
        """
        membership = self.membership
        closing = membership.view
        members = membership.force(self._reactor.seconds(), without)
        self._log.warn(
            "member {me!r} forces a view change to {members}, without {lost}, on"
            " an operator's word that they are gone for good: a majority of view"
            " {view} is not needed for it",
            me=self.me,
            members=", ".join(members),
            lost=", ".join(n for n in closing.members if n not in members),
            view=closing.id,
        )
        self.schedule_turn()
        return members

    def _membership_tick(self) -> None:
        self._membership_call = None
        self._membership_deadline = None
        self.membership.tick(self._reactor.seconds())
        self.schedule_turn()

    def _view_installed(self, change: ViewChange, installed: float) -> None:
        # Timed to when the membership installed it, not to when the
        # messages the view closed with were handed out: those waited for
        # the member that left, and handing them out is the handlers' work.
        took = (
            installed - self._closing_since if self._closing_since is not None else 0.0
        )
        self._closing_since = None
        self.last_flush = took
        left = [n for n in self._view_members if n not in change.members]
        self._view_members = change.members
        if left:
            # What the members that left sent beyond the cut is dropped.
            gone = set(left)
            for key in [k for k in self._arrived if k[1] in gone]:
                del self._arrived[key]
        self.detector.keep_only(change.members)
        self._forget_peers(change.members)
        self._log.warn(
            "member {me!r} installed view {view} of {members}{left}, starting at"
            " index {index}; the view change took {ms:.0f} ms",
            me=self.me,
            view=change.view,
            members=", ".join(change.members),
            left=f" (without {', '.join(left)})" if left else "",
            index=change.index,
            ms=took * 1000,
            flush_s=took,
        )

    def _detect(self, now: float) -> None:
        """
        Ask the failure detector (L{isis_twisted.core.detector}) whom to suspect
        and whom to trust again, say so, and tell the membership.
        """
        membership = self.membership
        if membership.state == REMOVED:
            return
        links = self.links
        verdict = self.detector.look(
            now,
            [
                (name, link.last_heard if (link := links.get(name)) else None)
                for name in membership.peers
            ],
            membership.suspects,
        )
        for name, quiet in verdict.silent:
            self._log.warn(
                "member {me!r} suspects {peer!r}: silent for {seconds:.1f} s;"
                " starting a view change without it",
                me=self.me,
                peer=name,
                seconds=quiet,
            )
        silent = [name for name, _ in verdict.silent]
        back = verdict.back
        if silent:
            # All at once too: one by one, the first would start a view
            # change without that one alone.
            membership.suspect(*silent, now=now)
        if back:
            self._log.info(
                "member {me!r} hears from {peers} again and trusts them",
                me=self.me,
                peers=", ".join(repr(n) for n in back),
            )
            # All at once: trusted one by one, the first one back could make
            # a majority that leaves the others out.
            membership.trust(*back, now=now)
        self.schedule_turn()

    # -- subscriptions ----------------------------------------------------

    def subscribe(
        self,
        since: int | None,
        callback: Callable[[Any], None],
        flush: Callable[[], None] | None = None,
        views: bool = False,
    ) -> Subscription:
        """
        Pass every delivery from index C{since} onward to C{callback}.

        Deliveries this node still holds (the last C{history} of them) are
        replayed at once; then each new one is passed as it happens.

        @param since: The first index wanted, or L{None} for only new ones.
        @param callback: Called with each record, in order.
        @param flush: If given, called after the replay and after the
            records of each turn: the moment to send what C{callback}
            gathered.
        @param views: Pass the L{ViewChange} records too, in order with the
            deliveries (a view change's index is that of the first delivery
            of its view).
        @return: The subscription, to cancel.
        @raise HistoryGoneError: If C{since} is older than what the node
            holds.
        """
        return self.history.subscribe(
            since, self.engine.delivered, callback, flush, views
        )

    # -- status -----------------------------------------------------------

    def status(self) -> NodeStatus:
        """
        What the node is doing: its view and membership state, clock,
        queue, the oldest undelivered message (its age and whom it waits
        for), every peer's link, and counters.
        """
        engine = self.engine
        now = self._reactor.seconds()
        head = engine.head()
        oldest: OldestUndelivered | None = None
        if head is not None:
            since = self._arrived.get(head)
            oldest = OldestUndelivered(
                head[1],
                head[0],
                round(now - since, 3) if since is not None else None,
                tuple(engine.waiting_for()),
            )
        peers = {
            name: PeerStatus(
                connected_out=link.outbound is not None,
                connected_in=link.inbound is not None,
                unacked_frames=len(link.unacked),
                unacked_bytes=link.unacked_bytes,
                sent_seq=link.next_seq - 1,
                received_seq=link.received,
                frames_out=link.frames_out,
                frames_in=link.frames_in,
                bytes_out=link.bytes_out,
                bytes_in=link.bytes_in,
                resent=link.resent,
                duplicates=link.duplicates,
                connections=link.connects,
                refused=link.refused,
                silent_s=(
                    round(now - link.last_heard, 3)
                    if link.last_heard is not None
                    else None
                ),
            )
            for name, link in self.links.items()
        }
        membership = self.membership
        suspected = self.detector.suspected
        return NodeStatus(
            member=self.me,
            group=self.group,
            members=self.members,
            view=membership.view.id,
            view_members=membership.view.members,
            state=membership.state,
            removed_because=membership.reason,
            suspects={
                name: round(now - suspected[name], 3) if name in suspected else None
                for name in sorted(membership.suspects)
            },
            view_changes=membership.view_changes,
            suspicions=self.detector.suspicions,
            last_view_change_s=(
                round(self.last_flush, 4) if self.last_flush is not None else None
            ),
            clock=engine.clock,
            multicasts=self.multicasts,
            delivered=engine.delivered,
            queue=engine.queue_length,
            waiting_multicasts=len(self._waiting),
            oldest_undelivered=oldest,
            peers=peers,
            silent_members=[
                name
                for name, link in self.links.items()
                if name in membership.view.members
                and now
                - (link.last_heard if link.last_heard is not None else self._started_at)
                >= self.silence
            ],
            rejected_connections=self.rejections,
            last_rejection=self.last_rejection,
            handler_errors=self.handler_errors,
            refused_because=self.refused_because,
            forced_views=tuple(membership.forced),
            stuck_handlers=tuple(
                StuckHandler(
                    s.handler,
                    s.index,
                    s.reason,
                    round(now - s.since, 3),
                    s.attempts,
                )
                for s in sorted(self.pump.all_stuck, key=lambda s: s.since)
            ),
            handler_give_ups=self.handler_give_ups,
            undelivered_records=self.pump.pending,
            caught_up_records=self.caught_up,
            restored_bytes=self.restored_bytes,
        )

    def _fail_sent(self, why: str) -> None:
        sent = list(self._pending.values())
        self._pending.clear()
        for d in sent:
            d.errback(DeliveryUnknownError(why))

    def _fail_unsent(self, error: Exception) -> None:
        unsent = [d for _, d in self._waiting]
        self._waiting.clear()
        self._waiting_bytes = 0
        for d in unsent:
            d.errback(error)

    # -- IService ---------------------------------------------------------

    def peer_factory(self) -> PeerFactory:
        """
        The factory for connections that peers dial to this node, for a
        caller that listens itself.
        """
        factory = PeerFactory(self)
        self._factories.append(factory)
        return factory

    def privilegedStartService(self) -> None:
        """
        Start listening for peers, before C{twistd} drops privileges.
        """
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self._start_listening()

    def startService(self) -> None:
        """
        Listen for peers (unless L{privilegedStartService} did) and start
        dialling each of them.
        """
        self.stopped = False
        if not self._dialers:
            for name, where in self._peers.items():
                self._dial(name, where)
        super().startService()  # type: ignore[no-untyped-call]
        self._start_listening()
        self._started_at = self._reactor.seconds()
        self.detector.started = self._started_at
        # A node started again with its state gives its peers the time to
        # be heard from before it suspects them.
        for link in self.links.values():
            link.closed = False
            if link.last_heard is not None:
                link.last_heard = self._started_at
        if self.discovery is not None and not self.discovered:
            self._log.info(
                "member {me!r} asks {addresses} to join group {group!r}, from"
                " index {index}",
                me=self.me,
                addresses=", ".join(self.discovery.addresses),
                group=self.group,
                index=(self._started_from or StreamPosition()).index + 1,
            )
        elif self.membership.state == JOINING:
            self._log.warn(
                "member {me!r} holds records of the group up to index {index}"
                " and asks to be added back",
                me=self.me,
                index=(self._started_from or StreamPosition()).index,
            )
            self.membership.join(self._reactor.seconds())
        elif self._left:
            self._left = False
            self._log.warn(
                "member {me!r} left the group when it stopped; it asks to be"
                " added back, from index {index}",
                me=self.me,
                index=self.handed.index,
            )
            self.catchup.forget()
            self.membership.join(self._reactor.seconds())
            self._told_joining = True
        # A stop may have cut a turn short: what it owed goes out now.
        self.schedule_turn()
        if self.feed.stopped:
            self.feed.start()
        if self.discovery is not None and not self.discovered:
            self.discovery.start()
        if self.links or self.discovery is not None:
            self._beat = LoopingCall(self._tick)
            self._beat.clock = self._reactor
            # Often enough that a silent member is suspected within a
            # tenth of suspect_after of the moment it could be.
            self._beat.start(min(self.heartbeat, self.suspect_after / 10), now=False)

    def _dial(self, name: str, where: str | IStreamClientEndpoint) -> None:
        """
        Keep dialling member C{name} at C{where}.
        """
        endpoint = (
            clientFromString(self._reactor, where) if isinstance(where, str) else where
        )
        if self.tls is not None:
            endpoint = client_endpoint(self.tls, name, endpoint)
        dialing = PeerFactory(self, self.links[name])
        self._factories.append(dialing)
        service: ClientService = PeerDialer(
            endpoint,
            dialing,
            retryPolicy=self.links[name].retry_policy(
                self._retry, self._retry_max_delay
            ),
            clock=self._reactor,
        )
        service.setName(f"peer {name}")
        service.setServiceParent(self)
        self._dialers.append(service)

    def _tick(self) -> None:
        now = self._reactor.seconds()
        self._detect(now)
        waiting = set(self.engine.waiting_for())
        in_view = self.membership.view.members
        for name, link in self.links.items():
            link.heartbeat(now, self.heartbeat, self.silence)
            if name not in in_view:
                # Out of the group: the view change said so, once.
                self._reported.pop(name, None)
                continue
            heard = link.last_heard if link.last_heard is not None else self._started_at
            quiet = now - heard
            if quiet < self.silence:
                if name in self._reported:
                    del self._reported[name]
                    self._log.info("member {peer!r} is heard from again", peer=name)
                continue
            last = self._reported.get(name)
            if last is not None and now - last < self.silence:
                continue
            self._reported[name] = now
            held = (
                f"; delivery of {self.engine.queue_length} held messages waits for it"
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

    def _start_listening(self) -> None:
        if self._listen is None or self._listen_started:
            return
        self._listen_started = True
        server = (
            serverFromString(self._reactor, self._listen)
            if isinstance(self._listen, str)
            else self._listen
        )
        factory: Any = self.peer_factory()
        if self.tls is not None:
            factory = server_factory(self.tls, factory)
        server.listen(factory).addCallbacks(self._listened, self._listen_failed)

    def _listened(self, port: IListeningPort) -> None:
        self._port = port
        self._log.info(
            "member {me!r} of group {group!r} listening on {address}; peers: {peers}",
            me=self.me,
            group=self.group,
            address=port.getHost(),
            peers=", ".join(self.links) or "none",
        )
        self.listening.callback(port)

    def _listen_failed(self, failure: Failure) -> None:
        # error, not critical: before logging starts, critical events go to
        # stderr, which would say it twice beside the runner's own sentence.
        self._log.error(
            "member {me!r} cannot listen on {where}: {error}",
            me=self.me,
            where=self._listen,
            error=failure.getErrorMessage(),
        )
        self.listening.errback(failure)

    def stopService(self) -> Deferred[None]:
        """
        Stop listening, close every connection and fail the multicasts not
        yet delivered with L{NodeStoppedError}.
        """
        if not self.stopped:
            # Tell the others, so that they go on at once; the connections
            # are closed gracefully, with this written first.
            membership = self.membership
            self._left = membership.state not in (REMOVED, JOINING) and bool(
                membership.peers
            )
            membership.leave()
            self._end_turn()
        self.stopped = True
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        self._beat = None
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None
        if self._membership_call is not None and self._membership_call.active():
            self._membership_call.cancel()
        self._membership_call = None
        self.feed.stop()
        self.catchup.stop()
        if self.discovery is not None:
            self.discovery.stop()
        for link in self.links.values():
            link.close()
        for factory in self._factories:
            for proto in list(factory.live):
                proto.close()
        self._fail_sent(
            f"{self.me!r} stopped after multicasting the message but before"
            " delivering it; the other members may still deliver it"
        )
        self._fail_unsent(
            NodeStoppedError(f"{self.me!r} stopped before sending the message")
        )
        for handler in self.handlers:
            try:
                handler.close()
            except Exception:
                self._log.failure(
                    "delivery handler {handler!r} failed to close", handler=handler
                )
        waits: list[Deferred[Any]] = []
        stopping = super().stopService()  # type: ignore[no-untyped-call]
        if stopping is not None:
            waits.append(stopping)
        if self._port is not None:
            closing = self._port.stopListening()
            if closing is not None:
                waits.append(closing)
            self._port = None
        # A stopped node can be started again, with its state: it listens
        # anew and its peers take it back as the same incarnation.
        self._listen_started = False
        self.listening = Deferred()
        return gatherResults(waits).addCallback(lambda _: None)
