"""
Where C{isis send} takes its payloads from: a list (the command line's
arguments and files) or a stream (standard input, read in a thread).

A source hands a payload to its L{PayloadSink} for every slot of the window
it is granted, so that input is read no further ahead of delivery than the
window allows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Protocol

from twisted.internet.interfaces import IReactorFromThreads

__all__ = ["ListSource", "PayloadSink", "PayloadSource", "StreamSource"]


class PayloadSource(Protocol):
    """
    Where C{isis send} takes its payloads from.
    """

    def start(self, window: int) -> None:
        """
        Begin handing over payloads, C{window} of them at most for now.
        """

    def grant(self, slots: int) -> None:
        """
        Allow C{slots} more payloads: as many multicasts have settled.
        """

    def stop(self) -> None:
        """
        Hand over nothing more.
        """


class PayloadSink(Protocol):
    """
    What a L{PayloadSource} hands its payloads to: the command's sender.
    """

    def send(self, number: int, payload: bytes) -> None:
        """
        Multicast payload C{number} (counted from 1).
        """

    def send_all(self, items: Sequence[tuple[int, bytes]]) -> None:
        """
        Multicast each C{(number, payload)}, in order.
        """

    def end_of_input(self) -> None:
        """
        The last payload was handed over.
        """

    def input_failed(self, error: BaseException) -> None:
        """
        The input could not be read (for C{error}); nothing more comes.
        """


class ListSource:
    """
    Payloads from a list (the command line's arguments and files).
    """

    def __init__(self, payloads: Sequence[bytes], sender: PayloadSink) -> None:
        self._items: Iterator[tuple[int, bytes]] = enumerate(payloads, 1)
        self._sender = sender
        self._credit = 0
        self._busy = False
        self._over = False

    def start(self, window: int) -> None:
        """
        Hand over the first C{window} payloads.
        """
        self._credit = window
        self._pump()

    def grant(self, slots: int) -> None:
        """
        Hand over C{slots} more payloads.
        """
        self._credit += slots
        self._pump()

    def stop(self) -> None:
        """
        Hand over nothing more.
        """
        self._over = True

    def _pump(self) -> None:
        # A multicast may settle while it is being sent (the connection being
        # gone), granting from inside this loop: the outer loop takes the
        # credit rather than recursing once per payload.
        if self._busy:
            return
        self._busy = True
        try:
            while self._credit > 0 and not self._over:
                item = next(self._items, None)
                if item is None:
                    self._over = True
                    self._sender.end_of_input()
                    break
                self._credit -= 1
                self._sender.send(*item)
        finally:
            self._busy = False


class StreamSource:
    """
    Payloads from a stream, each ended by C{separator} (the last may lack
    it), read in a thread of its own.

    Reading in a thread keeps the reactor free to receive deliveries while
    the stream blocks (a terminal, a slow pipe).  The thread takes a payload
    only when it holds a slot of the window, so input is read at most
    C{window} payloads (and one chunk) ahead of its delivery, whatever its
    size.  It hands over every payload of a chunk it has slots for in one
    call, rather than waking the reactor once per payload.

    A stream with a file descriptor is read with L{os.read}: a daemon thread
    blocked inside the stream's buffered reader would hold its lock, and the
    interpreter aborts when it finds that lock taken at exit.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        stream: IO[bytes],
        sender: PayloadSink,
        separator: bytes,
    ) -> None:
        self._reactor = reactor
        self._read_chunk = _chunk_reader(stream)
        self._sender = sender
        self._separator = separator
        self._slots = threading.Semaphore(0)
        self._stopped = threading.Event()

    def start(self, window: int) -> None:
        """
        Start the reading thread, with C{window} slots.
        """
        self._slots.release(window)
        threading.Thread(
            target=self._run, name="isis send: standard input", daemon=True
        ).start()

    def grant(self, slots: int) -> None:
        """
        Let the reading thread take C{slots} more payloads.
        """
        self._slots.release(slots)

    def stop(self) -> None:
        """
        Make the reading thread hand over nothing more; it ends once its
        read returns.
        """
        self._stopped.set()
        self._slots.release()

    def _run(self) -> None:
        call = self._reactor.callFromThread
        batch: list[tuple[int, bytes]] = []
        number = 0

        def hand_over() -> None:
            if batch:
                call(self._sender.send_all, list(batch))
                batch.clear()

        def take(payload: bytes) -> bool:
            nonlocal number
            if not self._slots.acquire(blocking=False):
                hand_over()
                self._slots.acquire()
            if self._stopped.is_set():
                return False
            number += 1
            batch.append((number, payload))
            return True

        # Parts of a payload not yet ended, joined once it ends: one payload
        # may span many chunks (a 10 MiB line).
        partial: list[bytes] = []
        while True:
            try:
                chunk = self._read_chunk()
            except (OSError, ValueError) as e:
                hand_over()
                call(self._sender.input_failed, e)
                return
            if not chunk:
                if partial and not take(b"".join(partial)):
                    return
                hand_over()
                call(self._sender.end_of_input)
                return
            pieces = chunk.split(self._separator)
            if len(pieces) == 1:
                partial.append(chunk)
                continue
            partial.append(pieces[0])
            pieces[0] = b"".join(partial)
            last = pieces.pop()
            partial = [last] if last else []
            for payload in pieces:
                if not take(payload):
                    return
            hand_over()


_CHUNK = 64 * 1024


def _chunk_reader(stream: IO[bytes]) -> Callable[[], bytes]:
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return lambda: stream.read(_CHUNK)
    return lambda: os.read(fd, _CHUNK)
