"""
The handshake of one peer connection, as its state and the rules of
L{isis_twisted.core.handshake} direct: the peer's HELLO checked, the group
secret proved, the name bound to the process that holds it, the link
opened.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING

from twisted.logger import Logger

from isis_twisted.core.handshake import NONCE_SIZE, HelloPolicy, handshake_mac
from isis_twisted.core.wire import (
    REFUSED_SECRET,
    Auth,
    Hello,
    Who,
    encode_auth,
    encode_hello,
    encode_here,
)
from isis_twisted.net.certs import peer_name
from isis_twisted.net.link import PeerLink, hello_of

if TYPE_CHECKING:
    from isis_twisted.net.connection import PeerProtocol

__all__ = ["Handshake"]


class Handshake:
    """
    The steps of one connection's handshake.

    The dialing side sends HELLO at once; the accepting side checks it and
    answers with its own HELLO (or REFUSE).  In a group with a secret both
    sides then prove it (AUTH).  An accepted connection that claims a
    member's name is held until this member's dial to that member's
    configured address says which process holds the name.

    @ivar proto: The connection.
    @ivar dialed: The link it was dialed for, or L{None} if accepted.
    @ivar nonce: This side's nonce (empty in a group without a secret).
    """

    _log = Logger()

    def __init__(self, proto: PeerProtocol) -> None:
        self.proto = proto
        self.owner = proto.owner
        self.state = proto.state
        self.dialed = proto.dialed
        self.nonce = b""

    def start(self) -> None:
        """
        The connection is made: a dialing side says HELLO.
        """
        if self.dialed is not None:
            if self.owner.secret is not None:
                self.nonce = os.urandom(NONCE_SIZE)
            self.send_hello(self.dialed)

    def send_hello(self, link: PeerLink, answering: int | None = None) -> None:
        """
        Send this side's HELLO to the member of C{link} (with this side's
        nonce, empty in a group without a secret).

        @param answering: For an answer, the incarnation the peer's HELLO
            gave.  The frames held are those of the incarnation the link
            recorded; another one is told it holds none of them, since they
            are not its frames (a restarted member, a second claimant).
        """
        received = link.received
        if answering is not None:
            received = link.sequence.answer(answering)
            self.state.told = received
        self.proto.send_raw(
            encode_hello(hello_of(self.owner, link.name, received, self.nonce))
        )

    def timed_out(self) -> None:
        """
        The handshake did not complete in time: drop the connection, saying
        why a held one could not be served.
        """
        timeout = self.owner.handshake_timeout
        claim = self.state.hello
        if not self.state.held or claim is None:
            self.proto.drop(f"no handshake within {timeout:g} s")
            return
        self.unhold()
        self.proto.drop(
            f"no handshake within {timeout:g} s: this node has not reached"
            f" {claim.member!r} at its configured address, so it cannot tell"
            " whether this connection comes from the process that holds the name"
        )

    def unhold(self) -> None:
        """
        Take a held connection off its link's hold.
        """
        claim = self.state.hello
        if claim is None:
            return
        if self.state.held:
            self.state.release()
        link = self.owner.link_for(claim.member)
        if link is not None:
            link.held.discard(self.proto)

    def policy(self) -> HelloPolicy:
        """
        What the peer's HELLO is checked against.
        """
        owner = self.owner
        return HelloPolicy(
            group=owner.group,
            me=owner.me,
            members=tuple(sorted(owner.members)),
            configured=tuple(owner.members),
            dialed=self.dialed.name if self.dialed is not None else None,
            has_secret=owner.secret is not None,
            require_certificate=owner.require_certificate,
        )

    def hello(self, frame: Hello) -> None:
        """
        The peer's HELLO: check it, then open the link, prove the secret,
        or hold the connection.
        """
        owner = self.owner
        policy = self.policy()
        link = owner.link_for(frame.member)
        wrong = policy.identity(frame, known=link is not None)
        if wrong is not None:
            self.proto.drop(wrong.reason, refuse=True, code=wrong.code)
            return
        self.proto.peer = frame.member
        presented = (
            peer_name(self.proto.transport) if owner.require_certificate else None
        )
        wrong = policy.credentials(frame, presented)
        if wrong is not None:
            self.proto.drop(wrong.reason, refuse=True, code=wrong.code)
            return
        if owner.secret is None:
            self._open_stranger(link, frame)
            return
        # Nothing of the link is touched until the peer has proved it holds
        # the secret: a stranger must not even record an incarnation.
        self.state.prove(frame)
        if self.dialed is None:
            self.nonce = os.urandom(NONCE_SIZE)
            if link is None:
                self.state.told = 0
                hello = hello_of(owner, frame.member, 0, self.nonce)
                self.proto.send_raw(encode_hello(hello))
            else:
                self.send_hello(link, frame.incarnation)
        else:
            self.proto.send_raw(encode_auth(Auth(self._mac(b"dialer"))))

    def _mac(self, role: bytes) -> bytes:
        """
        The MAC that the side in C{role} sends (see L{handshake_mac}).
        """
        hello = self.state.hello
        owner = self.owner
        assert hello is not None and owner.secret is not None
        mine = (owner.me, owner.incarnation, self.nonce)
        theirs = (hello.member, hello.incarnation, hello.nonce)
        dialer, acceptor = (mine, theirs) if self.dialed is not None else (theirs, mine)
        return handshake_mac(
            owner.secret, role, owner.group, dialer, acceptor, owner.members
        )

    def authenticate(self, frame: Auth) -> None:
        """
        The peer's proof of the group secret: check it, answer with this
        side's, and open the link.
        """
        hello = self.state.hello
        assert hello is not None
        theirs = b"acceptor" if self.dialed is not None else b"dialer"
        if not hmac.compare_digest(frame.mac, self._mac(theirs)):
            self.proto.drop(
                "failed the group secret check", refuse=True, code=REFUSED_SECRET
            )
            return
        link = self.owner.link_for(hello.member)
        if self.dialed is None:
            self.proto.send_raw(encode_auth(Auth(self._mac(b"acceptor"))))
        self._open_stranger(link, hello)

    def _open_stranger(self, link: PeerLink | None, frame: Hello) -> None:
        """
        Open C{link}, or, for a member the group was not started with, a
        new link to it: held until this node's dial to the address it gave
        reaches the same process.
        """
        if link is None:
            link = self.owner.add_peer(frame.member, frame.address)
            if link is None:
                self.proto.drop(
                    f"{frame.member!r} is not a member, and this group takes"
                    " no more members",
                    refuse=True,
                )
                return
        self._open_link(link, frame)

    def who(self, frame: Who) -> None:
        """
        A member about to join asks who listens here: answer, and close.
        """
        wrong = self.policy().wrong_group(frame.group)
        if wrong is not None:
            self.proto.drop(wrong.reason, refuse=True, code=wrong.code)
            return
        self.proto.send_raw(encode_here(self.owner.here()))
        self.state.close()
        self.proto.transport.loseConnection()

    def _open_link(self, link: PeerLink, frame: Hello) -> None:
        if self.dialed is not None:
            self._open_outbound(link, frame)
            return
        if link.reached == frame.incarnation:
            self._open_inbound(link, frame)
        elif link.reached is not None and (
            link.outbound is not None and link.outbound.is_open
        ):
            # The process at the member's address is connected right now and
            # is another one: this is a second process using the name.
            self.proto.drop(link.claimant(frame.incarnation), refuse=True)
        else:
            self._hold(link, frame)

    def _open_outbound(self, link: PeerLink, frame: Hello) -> None:
        """
        The process at the peer's configured address answered: it holds the
        peer's name, whatever else happens to this connection.
        """
        link.reached_process(frame.incarnation, self.proto.address)
        problem = link.check_incarnation(frame.incarnation)
        if problem is not None:
            self.proto.drop(problem, refuse=True)
            return
        self.proto.opened(link)
        link.outbound_ready(self.proto, frame.received)
        view = self.owner.view.id
        self._log.info(
            "connected to member {peer!r} at {address}{views}",
            peer=link.name,
            address=self.proto.address,
            views=(
                f" (it is in view {frame.view}, this node in view {view})"
                if frame.view != view
                else ""
            ),
            view=frame.view,
        )

    def _hold(self, link: PeerLink, frame: Hello) -> None:
        """
        Hold an accepted connection that claims C{link}'s member until this
        node's dial to the member's configured address says which process
        holds the name.

        It is answered now: the peer's own dial to this node waits for the
        answer, and this node's dial to the peer may be held just so on the
        other side; holding the answer too would hold both for ever.  What
        the peer sends after the answer stays unread until the connection is
        served or refused.
        """
        if self.owner.secret is None:
            self.send_hello(link, frame.incarnation)
        self.state.hold(frame)
        link.held.add(self.proto)

    def release(self) -> None:
        """
        This node's dial reached the member this held connection claims:
        serve it if it comes from the same process, else refuse it.
        """
        frame = self.state.hello
        if not self.state.held or frame is None:
            return
        link = self.owner.link_for(frame.member)
        assert link is not None
        self.unhold()
        self.proto.resume_reading()
        if link.reached == frame.incarnation:
            self._open_inbound(link, frame)
        else:
            self.proto.drop(link.claimant(frame.incarnation), refuse=True)
        if not self.state.closed:
            # What arrived while it was held.
            self.proto.read_held()

    def _open_inbound(self, link: PeerLink, frame: Hello) -> None:
        problem = link.check_incarnation(frame.incarnation)
        if problem is not None:
            self.proto.drop(problem, refuse=True)
            return
        if self.state.told is None:
            # Not answered yet (no secret, not held): the answer says what is
            # held, now that the incarnation is the recorded one.
            self.send_hello(link, frame.incarnation)
        told = self.state.told
        assert told is not None
        self.proto.opened(link)
        # The dialer's `received` is not applied here: this side's own dialed
        # connection reports what the peer holds, once it has checked that it
        # reached the right member.
        old = link.inbound_ready(self.proto, told)
        if old is not None:
            old.state.close()
            old.transport.abortConnection()  # type: ignore[attr-defined]
            self._log.info(
                "member {peer!r} reconnected from {address}; dropped its previous"
                " connection",
                peer=link.name,
                address=self.proto.address,
            )
