"""
L{MulticastNode}: one member of a group, on real connections.

The node joins the pure L{Engine} to one L{PeerLink} per peer, ends every
reactor turn by flushing the engine's frames to every link (so acks are
batched: one frame per peer per turn), hands deliveries to its
L{IDeliveryHandler}s and subscribers, and fires each multicast's Deferred
once the message is delivered here.  It is an L{IService}: C{twistd} and
applications start and stop it the same way.

The node is the wiring; its collaborators hold the rest, each in its own
module: L{Admission} (multicasts until their outcome, back-pressure),
L{Peers} (links, dialling), L{PeerListener} (listening),
L{MembershipDriver} (the membership's timer, failure suspicion, view
changes), L{Standing} (leaving the group and asking back), L{HandOut}
(records to the handlers, the history and the waiting multicasts),
L{node_status} (what L{MulticastNode.status} says) and L{CatchUp}
(catching up when added back).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IReactorTime,
    IStreamClientEndpoint,
    IStreamServerEndpoint,
)
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from isis_twisted.core.detector import FailureDetector
from isis_twisted.core.engine import (
    Delivery,
    Engine,
    Frame,
    ProtocolError,
)
from isis_twisted.core.membership import GROUP_LIMIT, EngineFactory, Membership
from isis_twisted.core.pump import HandlerPump
from isis_twisted.core.status import NodeStatus
from isis_twisted.core.views import (
    Control,
    Fetch,
    FetchState,
    NoRecords,
    NoState,
    Records,
    StateChunk,
    View,
)
from isis_twisted.core.wire import MESSAGE_OVERHEAD, Here, data_overhead, encode_body
from isis_twisted.interfaces import IDeliveryHandler, IOrderedMulticast
from isis_twisted.net.admission import Admission
from isis_twisted.net.catchup import CatchUp
from isis_twisted.net.certs import TLSIdentity
from isis_twisted.net.connection import PeerFactory
from isis_twisted.net.discovery import Discovery
from isis_twisted.net.feed import HandlerFeed
from isis_twisted.net.handout import HandOut
from isis_twisted.net.history import DeliveryHistory, Subscription
from isis_twisted.net.link import PeerLink
from isis_twisted.net.listener import PeerListener
from isis_twisted.net.membershipdriver import MembershipDriver
from isis_twisted.net.peers import Peers
from isis_twisted.net.report import node_status
from isis_twisted.net.standing import Standing

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


@implementer(IOrderedMulticast)
class MulticastNode(MultiService):
    """
    One member of a totally ordered multicast group.

    @ivar me: This member's name.
    @ivar members: Every member's name, sorted.
    @ivar group: The group's name; peers must use the same one.
    @ivar incarnation: A number drawn at random when the node was made; a
        member that restarts comes back as another incarnation.
    @ivar admission: Its multicasts until their outcome.
    @ivar peers: Its links, and how it dials each peer.
    @ivar listener: Where it listens for its peers.
    @ivar driver: Runs its membership on the reactor.
    @ivar standing: Its leaving the group and asking back in.
    @ivar handout: Where its records go once delivered.
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
        self.pump = HandlerPump(handlers, give_up_after=handler_give_up)
        self.handout = HandOut(self, self._log)
        # A member whose durable handlers hold records of the group's stream
        # was in the group before: it asks to be added back and catches up,
        # rather than start view 0 afresh.
        resume = self.handout.started_from
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
        self.members = self.membership.view.members
        self.suspect_after = suspect_after
        self.max_frame = max_frame
        self._frame_room = max_frame - overhead
        self.max_payload = self._frame_room - MESSAGE_OVERHEAD
        self.handshake_timeout = handshake_timeout
        self.heartbeat = heartbeat
        self.silence = silence
        self.peers = Peers(self, self._log, peers, ack_delay, retry_max_delay)
        self.listener = PeerListener(self, self._log, listen)
        self.standing = Standing(self, self._log)
        self.discovery = (
            Discovery(
                reactor,
                me,
                group,
                join,
                self.standing.found,
                self.peers.locked_out,
                max_delay=retry_max_delay,
            )
            if join
            else None
        )
        self.admission = Admission(self)
        self._turn: IDelayedCall | None = None
        self.history = DeliveryHistory(
            me, history, history_bytes, self.membership.view.id
        )
        self.rejections = 0
        self.last_rejection: str | None = None
        self.stopped = False
        self._beat: LoopingCall | None = None
        self.detector = FailureDetector(suspect_after, heartbeat, self.peers.started_at)
        self.driver = MembershipDriver(self, self._log)
        self.feed = HandlerFeed(
            me, self.pump, reactor, self.handout.pass_on, self.standing.watch_handlers
        )
        self.catchup = CatchUp(self)
        self.on_fatal: Callable[[str], None] | None = None

    @property
    def links(self) -> dict[str, PeerLink]:
        """
        The link to every peer, by name.
        """
        return self.peers.links

    @property
    def listening(self) -> Deferred[IListeningPort]:
        """
        Fires with the listening port once the node listens (or fails if it
        cannot).
        """
        return self.listener.listening

    @property
    def refused_for_good(self) -> Deferred[str]:
        """
        Fires, once, with the sentence that says why this member can never
        be let in (most of its group refused it for its group name or
        secret); the node itself goes on redialling, backed off, and
        whoever runs it decides (C{twistd isis} exits).
        """
        return self.peers.refused_for_good

    @property
    def refused_because(self) -> str | None:
        """
        That sentence, once it is known.
        """
        return self.peers.refused_because

    @property
    def handlers(self) -> tuple[IDeliveryHandler, ...]:
        """
        The delivery handlers, in the order each record is given to them.
        """
        return self.pump.handlers

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
        return self.standing.cannot_deliver()

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
        self.admission.take(payload, d)
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
        return self.admission.take_all(payloads)

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
        now = self.clock.seconds()
        self.membership.receive_data(peer, frame, now)
        if frame.messages and frame.view == self.membership.view.id:
            arrived = self.admission.arrived
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
        self.driver.control_received(peer, message)

    def link_has_room(self) -> None:
        """
        Admit the multicasts that waited for room in the resend buffers (or
        for the view change to end).
        """
        self.catchup.give_more()
        self.admission.let_in()

    def rejected(self, address: str, peer: str | None, reason: str) -> None:
        """
        Count a refused or dropped connection.
        """
        self.rejections += 1
        who = f"{peer!r} " if peer else ""
        self.last_rejection = f"{who}from {address}: {reason}"

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
        return self.driver.new_incarnation(name, incarnation, untouched)

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
        return self.peers.add(name, address)

    # -- turns ------------------------------------------------------------

    def schedule_turn(self) -> None:
        """
        End this reactor turn with L{_end_turn}, once, unless stopped.
        """
        if self._turn is None and not self.stopped:
            self._turn = self.clock.callLater(0, self._end_turn)

    def _end_turn(self) -> None:
        self._turn = None
        self.admission.unflushed = 0
        membership = self.membership
        self.peers.follow()
        links = self.links
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
            self.handout.hand_out(records)
        self.driver.watch()
        # Acknowledgements taken this turn may have made room that no link
        # reported (it never looked full, counting this turn's admissions).
        if self.admission.waiting:
            self.link_has_room()
        if membership.has_output:
            self.schedule_turn()

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
        self.handout.add(handler)

    # -- membership -------------------------------------------------------

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
        return self.driver.force_view(without)

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
        return node_status(self)

    # -- IService ---------------------------------------------------------

    def peer_factory(self) -> PeerFactory:
        """
        The factory for connections that peers dial to this node, for a
        caller that listens itself.
        """
        return self.peers.factory()

    def privilegedStartService(self) -> None:
        """
        Start listening for peers, before C{twistd} drops privileges.
        """
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self.listener.start()

    def startService(self) -> None:
        """
        Listen for peers (unless L{privilegedStartService} did) and start
        dialling each of them.
        """
        self.stopped = False
        self.peers.dial_all()
        super().startService()  # type: ignore[no-untyped-call]
        self.listener.start()
        now = self.clock.seconds()
        self.peers.started(now)
        self.detector.started = now
        self.standing.start()
        # A stop may have cut a turn short: what it owed goes out now.
        self.schedule_turn()
        if self.feed.stopped:
            self.feed.start()
        if self.discovery is not None and not self.standing.discovered:
            self.discovery.start()
        if self.links or self.discovery is not None:
            self._beat = LoopingCall(self._tick)
            self._beat.clock = self.clock
            # Often enough that a silent member is suspected within a
            # tenth of suspect_after of the moment it could be.
            self._beat.start(min(self.heartbeat, self.suspect_after / 10), now=False)

    def _tick(self) -> None:
        now = self.clock.seconds()
        self.driver.detect(now)
        self.peers.beat(now)

    def stopService(self) -> Deferred[None]:
        """
        Stop listening, close every connection and fail the multicasts not
        yet delivered with L{NodeStoppedError}.
        """
        if not self.stopped:
            # Tell the others, so that they go on at once; the connections
            # are closed gracefully, with this written first.
            self.standing.leave()
            self._end_turn()
        self.stopped = True
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        self._beat = None
        if self._turn is not None and self._turn.active():
            self._turn.cancel()
        self._turn = None
        self.driver.stop()
        self.feed.stop()
        self.catchup.stop()
        if self.discovery is not None:
            self.discovery.stop()
        self.peers.close()
        self.admission.stop()
        self.handout.close()
        waits: list[Deferred[Any]] = []
        stopping = super().stopService()  # type: ignore[no-untyped-call]
        if stopping is not None:
            waits.append(stopping)
        closing = self.listener.stop()
        if closing is not None:
            waits.append(closing)
        return gatherResults(waits).addCallback(lambda _: None)
