"""
The public seams of isis-twisted.

A group's members multicast through an L{IOrderedMulticast} provider and
receive every message, in one agreed order, through L{IDeliveryHandler}s.

For a group whose members stay up and whose links eventually reconnect, the
order keeps these guarantees:

  1. B{Total order}: if a member delivers m before m', every member that
     delivers both delivers m before m'.
  2. B{Agreement}: a message delivered by one member is delivered by all.
  3. B{Integrity}: a message is delivered at most once per member, and only
     if some member multicast it (the sender delivers its own messages too).
  4. B{FIFO}: one sender's messages are delivered in the order it sent them.
  5. B{Causality}: if a member delivered m before it multicast m', every
     member delivers m before m'.
  6. B{Validity}: a message multicast by a member is eventually delivered.

A member that crashes, hangs or is cut off is suspected once it has been
silent for C{--suspect-after} seconds and removed by a view change, after
which the others go on; a view is installed only with a majority of the one
before it, so a member cut off in a minority stops delivering instead of
going on as a second group.  Delivery is uniform: a message is delivered
only once every member of the view holds it, so whatever a member that
crashed had delivered, the survivors deliver too.  Handlers that also
provide L{IViewHandler} are told of every view change, in order with the
deliveries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from collections.abc import Iterator

    from twisted.internet.defer import Deferred

    from isis_twisted.core.engine import Delivery, StreamPosition, ViewChange


class IDeliveryHandler(Interface):
    """
    Receives every message of a group, in the agreed order.

    Every member calls its handlers with the same records, in the same order,
    with the same indices.  A handler that raises is logged and the member
    goes on with the next message; it is not called again for that one.
    """

    def deliver(record: Delivery) -> None:
        """
        Take one delivered message.

        @param record: The message: its C{index} in the agreed order (1, 2, 3
            ... on every member alike), C{sender}, C{clock} (C{(clock,
            sender)} is its timestamp) and C{payload}.
        """

    def close() -> None:
        """
        The member is stopping: release what the handler holds (files,
        connections).  L{deliver} is not called after this.
        """


class IViewHandler(IDeliveryHandler):
    """
    A delivery handler that is also told of every view change.
    """

    def view_changed(change: ViewChange) -> None:
        """
        A new view is installed: every delivery passed to L{deliver} from
        now on belongs to it.

        @param change: The new view's C{view} id, its C{members} in rank
            order and the C{index} its first delivery will carry.
        """


class IDurableHandler(IViewHandler):
    """
    A delivery handler that keeps what it was given (a file, a database):
    when its member restarts, it says where it stopped, and the member
    catches up from there before it delivers anything new, so that what the
    handler holds ends identical to the other members'.

    L{deliver} or L{view_changed} raising L{OSError} (a full disk) means the
    record was not kept: the member stops handing out records at that one
    and gives it again later, never skipping it.
    """

    def position() -> StreamPosition:
        """
        Where the handler stopped: the last delivery and view change it
        kept, read when it opened (its own records from an earlier run) and
        advanced by each record it keeps since.

        A handler keeping a torn last record (the member crashed while
        writing it) repairs it first: it is not part of the position.
        """


class IStateHandler(IDeliveryHandler):
    """
    A delivery handler with state of its own (a replicated store): a
    member added to a view in a new life gets that state from another
    member, as a snapshot streamed in chunks, instead of replaying the
    whole stream.

    The giver takes a snapshot between two records and says where in the
    stream it is; the joiner restores it, then is given only the records
    after that point.  Both members must run the same state handlers, in
    the same order.
    """

    def take_snapshot() -> Iterator[bytes]:
        """
        The handler's state as of now, as chunks of bytes.

        Called between two records.  The chunks are taken one at a time,
        as fast as the link to the joiner takes them, while the handler
        goes on being given records: the iterator must yield the state as
        it was at the call (copy what later records may change: a shallow
        copy of a dictionary of immutable values, a database snapshot).
        Chunks of any size are fine; the member cuts and joins them.
        """

    def begin_restore() -> None:
        """
        Forget the current state: a snapshot follows.  Called again if a
        transfer is cut off and another member's snapshot follows instead.
        """

    def restore_chunk(data: bytes) -> None:
        """
        The next bytes of the snapshot, in the order L{take_snapshot}
        yielded them.
        """

    def end_restore() -> None:
        """
        The snapshot is whole: the records given from now on follow it.
        """


class IDeliveryHandlerFactory(Interface):
    """
    A named kind of delivery handler, so that operators can choose it with
    C{twistd isis --handler NAME[:ARGUMENT]}.

    Third-party handlers register a provider of this interface (and of
    L{twisted.plugin.IPlugin}) in a C{twisted/plugins/} module of their own
    package; isis-twisted finds it through Twisted's plugin system.
    """

    name = Attribute("The name operators give: C{--handler NAME[:ARGUMENT]}.")
    description = Attribute("One line saying what the handler does.")

    def build(argument: str | None) -> IDeliveryHandler:
        """
        Make a handler.

        @param argument: What followed C{NAME:} in the handler's
            specification, or L{None} if nothing did.
        @raise ValueError: If the argument is missing, unexpected or unusable;
            the message says so in plain words and is shown to the operator.
        """


class IOrderedMulticast(Interface):
    """
    A member of a group that multicasts in total order.
    """

    me = Attribute("This member's name (C{str}).")
    members = Attribute("The names of every member of the group, sorted.")

    def multicast(payload: bytes) -> Deferred[Delivery]:
        """
        Send C{payload} to every member of the group, this one included.

        @param payload: The message's bytes.
        @return: A L{Deferred} that fires with the message's delivery record
            once this member has delivered it.
        @raise TypeError: If C{payload} is not L{bytes}.
        """


class HistoryGoneError(Exception):
    """
    A subscriber asked for deliveries older than the member still holds.
    The message says from which index it can resume.

    @ivar oldest: That index, when the member said it (across the AMP
        client API only the message travels).
    """

    def __init__(self, message: str, oldest: int | None = None) -> None:
        super().__init__(message)
        self.oldest = oldest
