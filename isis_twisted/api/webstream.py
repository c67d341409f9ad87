"""
The long-lived answers of the HTTP API: a member's delivery stream and its
status, as Server-Sent Events or NDJSON, written to a L{Request} for as
long as the reader stays.

A reader that stops reading does not grow the member's memory: once the
connection's write buffer is full the stream holds what follows in a
backlog of a bounded number of bytes, as the AMP client API does
(L{isis_twisted.api.nodecontrol.DEFAULT_BACKLOG}); past it the stream ends with a
last event saying from which index to resume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.web.server import Request
from zope.interface import implementer

from isis_twisted.api.nodecontrol import NodeControl, Subscription
from isis_twisted.api.webformat import (
    delivery_line,
    ndjson_line,
    sse_event,
    stream_fields,
)
from isis_twisted.core.engine import Delivery, Record, ViewChange
from isis_twisted.interfaces import HistoryGoneError

__all__ = ["CHUNK_BYTES", "KEEPALIVE_S", "DeliveryStream", "StatusStream", "WebNode"]

CHUNK_BYTES = 64 * 1024
"""
How much a delivery stream gathers before it writes, within a turn (and
in a replay): a paused reader is noticed before the backlog bound passes.
"""

KEEPALIVE_S = 15.0
"""
Seconds of silence after which a stream writes a comment (SSE) or an empty
line (NDJSON), so that proxies keep it open and a reader gone away is
found out.
"""


class WebNode(NodeControl, Protocol):
    """
    What the HTTP API needs from a node: the client API's L{NodeControl}
    and a little more.
    """

    @property
    def max_payload(self) -> int:
        """
        The largest payload the node takes, in bytes.
        """

    def view_at(self, index: int) -> int | None:
        """
        The id of the view the delivery with index C{index} is delivered in,
        or L{None} if that is too long ago to know.
        """

    def cannot_deliver(self) -> tuple[str, str, tuple[str, ...]] | None:
        """
        Why a message multicast now would not be delivered (a kind:
        C{"stopped"}, C{"removed"} or C{"blocked"}, and a sentence), and
        the members it waits for; L{None} if it would be.
        """


def stream_type(ndjson: bool) -> bytes:
    """
    The C{Content-Type} of a stream: NDJSON, or Server-Sent Events.
    """
    return (
        b"application/x-ndjson; charset=utf-8"
        if ndjson
        else b"text/event-stream; charset=utf-8"
    )


@implementer(IPushProducer)
class _Stream:
    """
    What both streams share: the request, its producer registration, the
    backlog while the reader does not read, and the keep-alive.
    """

    _log = Logger()

    def __init__(
        self,
        request: Request,
        clock: IReactorTime,
        ndjson: bool,
        backlog: int,
        streams: set[Any] | None = None,
    ) -> None:
        """
        @param streams: Where the open streams are kept, to be ended when
            the member stops; this one is in it while it is open.
        """
        self.request = request
        self._streams = streams
        if streams is not None:
            streams.add(self)
        self.ndjson = ndjson
        self._clock = clock
        self._limit = backlog
        self._paused = False
        self._held: list[bytes] = []
        self._held_bytes = 0
        self.ended = False
        self._quiet: IDelayedCall | None = None
        request.setHeader(b"Content-Type", stream_type(ndjson))
        request.setHeader(b"Cache-Control", b"no-store")
        # Proxies (nginx) buffer answers unless told not to.
        request.setHeader(b"X-Accel-Buffering", b"no")
        # Kept: a finished request lets go of its channel.
        self._transport: Any = getattr(request.channel, "transport", None)
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        self._arm()

    held_from: int | None = None

    def write(self, data: bytes, first: int | None = None) -> None:
        """
        Write C{data} now, or hold it while the reader does not read.

        @param first: The index of the first record in C{data}, if any:
            where a reader dropped while it is held resumes.
        """
        if self.ended:
            return
        if self._paused:
            if self.held_from is None:
                self.held_from = first
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > self._limit:
                self.overflow()
            return
        self.request.write(data)
        self._arm()

    def overflow(self) -> None:
        """
        The reader fell more than the backlog behind: end the stream.
        """
        self.end()

    def end(self, last: bytes = b"") -> None:
        """
        End the stream, after C{last}; what is held is dropped.
        """
        if self.ended:
            return
        self._held.clear()
        self._held_bytes = 0
        self.request.write(last)
        self._stop()
        self.request.unregisterProducer()
        # Ended early: the connection goes with it, so that a client that
        # asks again on it is not cut by the abort below.
        self.request.channel.persistent = False
        self.request.finish()
        if self._paused:
            # A reader that reads nothing would hold the connection open
            # for ever; give it a while to take the last event, then cut.
            self._clock.callLater(30, self._abort)

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None and not getattr(transport, "disconnected", False):
            transport.abortConnection()

    def _arm(self) -> None:
        if self._quiet is not None and self._quiet.active():
            self._quiet.reset(KEEPALIVE_S)
        else:
            self._quiet = self._clock.callLater(KEEPALIVE_S, self._keepalive)

    def _keepalive(self) -> None:
        self._quiet = None
        if self.quiet_end():
            return
        if not self._paused:
            self.write(b"\n" if self.ndjson else b": keep-alive\n\n")
        else:
            self._arm()

    def quiet_end(self) -> bool:
        """
        The stream has been quiet for L{KEEPALIVE_S}: end it, if it will
        never say anything again.

        @return: Whether it ended.
        """
        return False

    def pauseProducing(self) -> None:
        """
        The connection's write buffer is full: hold what follows.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        The reader read: write what was held.
        """
        self._paused = False
        self.held_from = None
        if self._held and not self.ended:
            held, self._held = self._held, []
            self._held_bytes = 0
            self.request.write(b"".join(held))
            self._arm()

    def stopProducing(self) -> None:
        """
        The connection is going; L{_finished} follows.
        """

    def _stop(self) -> None:
        self.ended = True
        if self._quiet is not None and self._quiet.active():
            self._quiet.cancel()
        self._quiet = None

    def _finished(self, result: object) -> None:
        # The reader went away, or the stream ended: either way it is over.
        self._stop()
        self._held.clear()
        if self._streams is not None:
            self._streams.discard(self)
        self.closed()

    def stop(self) -> None:
        """
        The member is stopping: end the stream.
        """
        self.end()

    def closed(self) -> None:
        """
        The stream is over: let go of what feeds it.
        """


class DeliveryStream(_Stream):
    """
    A member's delivery stream, from an index on, written to one request:
    each delivery an event (SSE: its id the delivery's index, so that a
    reader resumes with C{Last-Event-ID}) or a line (NDJSON), view changes
    too (SSE event C{view}).

    @ivar first: The index of the first delivery the stream writes.
    """

    def __init__(
        self,
        request: Request,
        node: WebNode,
        since: int | None,
        clock: IReactorTime,
        ndjson: bool,
        backlog: int,
        streams: set[Any] | None = None,
        on_drop: Callable[[object, int], None] | None = None,
    ) -> None:
        """
        @param streams: As for the other streams.
        @param on_drop: Told of a reader dropped for reading too slowly (its
            address and where it resumes), to log once and count.
        @raise isis_twisted.interfaces.HistoryGoneError: If C{since} is
            older than the node holds (nothing is written then).
        """
        self._node = node
        self.on_drop = on_drop
        # The index a reader resumes from after what was given so far.
        self._next: int | None = since
        self._view: int | None = None
        self._chunks: list[bytes] = []
        self._resume_from: int | None = None
        self._subscription: Subscription | None = None
        super().__init__(request, clock, ndjson, backlog, streams)
        self.first = since if since is not None else 0
        if not ndjson:
            self._chunks.append(
                b": deliveries of member %s\n\n" % json.dumps(node.me).encode()
            )
        try:
            # The replay comes before this returns, written as it goes: a
            # long one would otherwise be one write past every bound.
            subscription = node.subscribe(since, self._push, self._flush, views=True)
        except HistoryGoneError:
            self._stop()
            request.unregisterProducer()
            if streams is not None:
                streams.discard(self)
            raise
        self.first = subscription.first
        if self.ended:
            # Dropped during the replay already.
            subscription.cancel()
            return
        self._subscription = subscription
        if self._next is None or self._next < self.first:
            self._next = self.first
        # The answer's head goes out now (for SSE with a comment), so that
        # a browser's EventSource opens before the first delivery.
        self._flush()
        self.write(b"")

    def _push(self, record: Record) -> None:
        if type(record) is Delivery:
            view = self._view
            if view is None:
                view = self._view = self._node.view_at(record.index)
            line = delivery_line(record, view)
            chunk = (
                line + b"\n"
                if self.ndjson
                else b"id: %d\ndata: %s\n\n" % (record.index, line)
            )
            self._next = record.index + 1
        else:
            assert isinstance(record, ViewChange)
            self._view = record.view
            fields = stream_fields(record, record.view)
            chunk = ndjson_line(fields) if self.ndjson else sse_event(fields, "view")
            self._next = record.index
        if self._resume_from is None:
            self._resume_from = record.index
        self._chunks.append(chunk)
        self._chunk_bytes += len(chunk)
        if self._chunk_bytes >= CHUNK_BYTES:
            self._flush()

    _chunk_bytes = 0

    def _flush(self) -> None:
        if not self._chunks:
            return
        self._chunk_bytes = 0
        chunks, self._chunks = self._chunks, []
        first, self._resume_from = self._resume_from, None
        self.write(b"".join(chunks), first)

    def overflow(self) -> None:
        """
        The reader fell more than the backlog behind: end with an event
        saying from which index to resume.
        """
        resume = self._resume_index()
        sentence = (
            f"member {self._node.me!r} ended this stream because the reader"
            f" read too slowly; resume from index {resume}"
        )
        if self.on_drop is not None:
            self.on_drop(self.request.getClientAddress(), resume)
        self._last("dropped", sentence, resume)

    def _resume_index(self) -> int:
        # The first record not written: the first one held back, else the
        # one after all that was given.
        if self.held_from is not None:
            return self.held_from
        return self._next if self._next is not None else self.first

    def _last(self, event: str, sentence: str, resume: int) -> None:
        if self.ndjson:
            # No event name as in SSE: the line says which end it is.
            line = {"event": event, "error": sentence, "resume_from": resume}
            self.end(ndjson_line(line))
        else:
            self.end(sse_event({"error": sentence, "resume_from": resume}, event))

    def quiet_end(self) -> bool:
        """
        A member out of the group delivers nothing more: end with an event
        C{removed} (NDJSON: a last line) saying so and where to resume, at
        another member.
        """
        problem = self._node.cannot_deliver()
        if problem is None or problem[0] != "removed":
            return False
        self._flush()
        resume = self._resume_index()
        self._last(
            "removed", f"{problem[1]}; resume from index {resume} elsewhere", resume
        )
        return True

    def stop(self) -> None:
        """
        The member is stopping: end with an event saying where to resume
        (at another member: indices are the same on all).
        """
        self._flush()
        resume = self._resume_index()
        self._last(
            "end",
            f"member {self._node.me!r} is stopping; resume from index {resume}",
            resume,
        )

    def closed(self) -> None:
        """
        Cancel the subscription.
        """
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.cancel()


class StatusStream(_Stream):
    """
    A member's status, every C{every} seconds, as SSE events C{status} or
    NDJSON lines, for the status page.
    """

    def __init__(
        self,
        request: Request,
        status: Callable[[], dict[str, Any]],
        clock: IReactorTime,
        ndjson: bool,
        every: float,
        streams: set[Any] | None = None,
    ) -> None:
        super().__init__(request, clock, ndjson, 1 << 20, streams)
        self._status = status
        self._every = every
        self._tick: IDelayedCall | None = None
        self._send()

    def _send(self) -> None:
        self._tick = None
        if self.ended:
            return
        # A reader that is not reading misses ticks rather than gather them.
        if not self._paused:
            data = self._status()
            self.write(ndjson_line(data) if self.ndjson else sse_event(data, "status"))
        self._tick = self._clock.callLater(self._every, self._send)

    def closed(self) -> None:
        """
        Stop the ticks.
        """
        if self._tick is not None and self._tick.active():
            self._tick.cancel()
        self._tick = None
