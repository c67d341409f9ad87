"""
The records the membership protocol exchanges: views, ballots, proposals and
the control messages of the flush.

They are plain frozen attrs classes with no behaviour, shared by the
membership state machine (L{isis_twisted.core.membership}), its simulation and
the wire codec.
"""

from __future__ import annotations

import attrs

from isis_twisted.core.engine import Message, Record, StreamPosition

Ballot = tuple[int, str]
"""
A ballot of the flush: C{(number, proposer)}, compared as a pair, so two
members never run the same ballot.
"""

NO_BALLOT: Ballot = (0, "")
"""
Below every real ballot.
"""

Stamps = tuple[tuple[str, int], ...]
"""
Per member, a stamp clock: C{((name, stamp), ...)} sorted by name.
"""

Addresses = tuple[tuple[str, str], ...]
"""
Where members listen for their peers: C{((name, address), ...)} sorted by
name, each address an endpoint description a peer dials
(C{"tcp:host=10.0.0.4:port=9001"}).
"""


@attrs.frozen
class View:
    """
    A membership view: who is in the group, from when.

    @ivar id: The view's id: 0 for the group as started, one more with
        every view change.
    @ivar members: The members, in rank order (sorted by name); the first
        one that is not suspected coordinates a view change.
    """

    id: int
    members: tuple[str, ...]

    def majority(self, names: tuple[str, ...] | frozenset[str]) -> bool:
        """
        Whether C{names} hold more than half of this view's members.
        """
        return 2 * len(set(names) & set(self.members)) > len(self.members)


@attrs.frozen
class Proposal:
    """
    What a view change decides: the next view's members and the cut the
    current view closes with.

    @ivar members: The next view's members, sorted.
    @ivar cut: Per member of the closing view, the stamp of its last message
        that the view delivers; later ones are dropped.
    @ivar floor: Per member of the closing view, the stamp up to which every
        member of the next view already held its messages: what lies above
        it is the ragged edge that some members had to be sent.
    @ivar joined: The members it adds, each with the incarnation that asked
        (sorted by name): the process every member lets in under that name.
    @ivar addresses: Where the members it adds listen, for those that said
        (sorted by name): how every member reaches a member that none was
        started with.
    """

    members: tuple[str, ...]
    cut: Stamps
    floor: Stamps
    joined: tuple[tuple[str, int], ...] = ()
    addresses: Addresses = ()


@attrs.frozen
class Suspect:
    """
    The sender suspects these members of the view.
    """

    view: int
    names: tuple[str, ...]


@attrs.frozen
class Propose:
    """
    Phase 1 of a view change: promise ballot C{ballot} and report your state.

    @ivar members: The next view the proposer means to install.
    @ivar held: The proposer's own receipt horizons, so that a member that
        already installed the next view can send what it lacks.
    """

    view: int
    ballot: Ballot
    members: tuple[str, ...]
    held: Stamps


@attrs.frozen
class Promise:
    """
    A member's answer to L{Propose}: it promised the ballot, stopped sending
    and delivering in the view, and this is what it holds.

    @ivar held: Per sender, the stamp of the newest message it holds (its
        messages up to there, without gaps).
    @ivar messages: Every message of the view it holds and has not
        delivered.
    @ivar accepted: The proposal it accepted last, with its ballot, if any.
    """

    view: int
    ballot: Ballot
    held: Stamps
    messages: tuple[Message, ...]
    accepted: tuple[Ballot, Proposal] | None


@attrs.frozen
class Reject:
    """
    The sender will not take part in C{ballot}: it promised C{promised}.
    """

    view: int
    ballot: Ballot
    promised: Ballot


@attrs.frozen
class Accept:
    """
    Phase 2: accept C{proposal}; C{messages} are those of the cut that the
    receiver did not report holding.
    """

    view: int
    ballot: Ballot
    proposal: Proposal
    messages: tuple[Message, ...]


@attrs.frozen
class Accepted:
    """
    The sender accepted the proposal of C{ballot}.
    """

    view: int
    ballot: Ballot


@attrs.frozen
class Decide:
    """
    The view C{view} closes with C{proposal}: install it.  C{messages} are
    those of the cut the receiver may lack.
    """

    view: int
    ballot: Ballot
    proposal: Proposal
    messages: tuple[Message, ...]


@attrs.frozen
class Inquire:
    """
    The sender is still in view C{view} and saw a later one: what was
    decided?  C{held} says what it holds.
    """

    view: int
    held: Stamps


@attrs.frozen
class Gone:
    """
    The group has moved past view C{view} without the receiver, or so long
    ago that nobody keeps what it would need: it is out of the group.

    @ivar latest: The newest view the sender knows.
    @ivar addresses: Where the members of C{latest} listen, as far as the
        sender knows: how a member that knows none of them reaches them.
    """

    view: int
    latest: View
    addresses: Addresses = ()


@attrs.frozen
class Join:
    """
    The sender, not a member of any view the receiver knows of (restarted
    as a new incarnation, or left out), asks to be added.

    @ivar view: The latest view id the sender knows of.
    @ivar incarnation: The sender's incarnation.
    @ivar address: Where the sender listens for its peers, or C{""} if the
        members know already (it is one the group was started with).
    """

    view: int
    incarnation: int
    address: str = ""


@attrs.frozen
class Welcome:
    """
    The receiver was added to C{latest}: it starts there, at index C{first}.

    @ivar view: The id of C{latest} (every control message names a view).
    @ivar latest: The view the receiver is a member of now.
    @ivar first: The index of that view's first delivery.
    @ivar clock: The sender's clock, for the receiver's engine to start at.
    @ivar addresses: Where the members of C{latest} listen, as far as the
        sender knows.
    """

    view: int
    latest: View
    first: int
    clock: int
    addresses: Addresses = ()


@attrs.frozen
class Leave:
    """
    The sender is stopping: leave it out of the next view now rather than
    wait to find it silent.
    """

    view: int


@attrs.frozen
class Fetch:
    """
    A member added in view C{view} asks for the deliveries it lacks: every
    record after C{after} and before the view change to C{view}.
    """

    view: int
    after: StreamPosition


@attrs.frozen
class Records:
    """
    Part of the answer to a L{Fetch}: records of the stream, in order.

    @ivar done: Whether these are the last ones.
    """

    view: int
    records: tuple[Record, ...]
    done: bool


@attrs.frozen
class NoRecords:
    """
    The answer to a L{Fetch} that the sender cannot give.

    @ivar oldest: The index of the oldest delivery the sender still holds.
    @ivar reason: Why, in plain words.
    """

    view: int
    oldest: int
    reason: str


@attrs.frozen
class FetchState:
    """
    A member added in view C{view} in a new life asks for the state of its
    L{state handlers<isis_twisted.interfaces.IStateHandler>}.

    @ivar parts: How many state handlers it runs: the giver must run as
        many.
    """

    view: int
    parts: int


@attrs.frozen
class StateChunk:
    """
    Part of the answer to a L{FetchState}: bytes of one state handler's
    snapshot.

    @ivar position: Where in the stream the snapshot was taken: the joiner
        is given only the records after it.
    @ivar part: Which state handler (its place among them, from 0).
    @ivar data: The next bytes of that handler's snapshot.
    @ivar done: Whether these are the last bytes of the last handler's.
    """

    view: int
    position: StreamPosition
    part: int
    data: bytes
    done: bool


@attrs.frozen
class NoState:
    """
    The answer to a L{FetchState} that the sender cannot give.

    @ivar reason: Why, in plain words.
    """

    view: int
    reason: str


Control = (
    Suspect
    | Propose
    | Promise
    | Reject
    | Accept
    | Accepted
    | Decide
    | Inquire
    | Gone
    | Join
    | Welcome
    | Leave
    | Fetch
    | Records
    | NoRecords
    | FetchState
    | StateChunk
    | NoState
)
"""
Every control message of the membership protocol.
"""
