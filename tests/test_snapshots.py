"""
Tests for L{isis_twisted.core.snapshots}: a giver's snapshots cut into chunks of
bounded size, and a joiner's choice of whom to ask.
"""

from __future__ import annotations

from collections.abc import Iterator

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from isis_twisted.core.engine import StreamPosition
from isis_twisted.core.snapshots import FetchingState, SnapshotGiving, state_handlers
from isis_twisted.core.views import FetchState, StateChunk
from isis_twisted.interfaces import IStateHandler
from isis_twisted.tools.testing import DurableRecorder, RecordingHandler

AT = StreamPosition(40, 2, ("a", 33))


def chunks(giving: SnapshotGiving, most: int) -> list[StateChunk]:
    out = []
    while (chunk := giving.next_chunk(most)) is not None:
        out.append(chunk)
    return out


class GivingTests(SynchronousTestCase):
    def test_cut_and_joined(self) -> None:
        """
        Each part's bytes arrive in order, in chunks of at most the bound,
        each naming its part; small pieces are joined; the last chunk, and
        only it, is done.
        """
        first = iter([b"ab", b"cdefg", b"h"])
        second = iter([b"x" * 10])
        got = chunks(SnapshotGiving(3, AT, [first, second]), 4)
        self.assertTrue(all(len(c.data) <= 4 for c in got))
        self.assertEqual([c.done for c in got], [False] * (len(got) - 1) + [True])
        self.assertEqual(b"".join(c.data for c in got if c.part == 0), b"abcdefgh")
        self.assertEqual(b"".join(c.data for c in got if c.part == 1), b"x" * 10)
        self.assertEqual({(c.view, c.position) for c in got}, {(3, AT)})
        parts = [c.part for c in got]
        self.assertEqual(parts, sorted(parts))

    def test_empty_parts(self) -> None:
        """
        No parts, or empty ones, still end with one done chunk; an empty
        part in the middle sends nothing of its own.
        """
        got = chunks(SnapshotGiving(3, AT, []), 4)
        self.assertEqual(got, [StateChunk(3, AT, 0, b"", True)])
        got = chunks(SnapshotGiving(3, AT, [iter([b"a"]), iter([]), iter([b"c"])]), 4)
        self.assertEqual(
            [(c.part, c.data, c.done) for c in got],
            [(0, b"a", False), (2, b"c", True)],
        )

    def test_sent(self) -> None:
        giving = SnapshotGiving(3, AT, [iter([b"a" * 9])])
        chunks(giving, 4)
        self.assertEqual(giving.sent, 9)

    def test_snapshot_error_passes_through(self) -> None:
        """
        A snapshot that raises half-way raises from L{next_chunk}, for the
        node to refuse with.
        """

        def broken() -> Iterator[bytes]:
            yield b"abcd"
            raise RuntimeError("disk gone")

        giving = SnapshotGiving(3, AT, [broken()])
        self.assertEqual(giving.next_chunk(4), StateChunk(3, AT, 0, b"abcd", False))
        with self.assertRaises(RuntimeError):
            giving.next_chunk(4)


@implementer(IStateHandler)
class Stateful(RecordingHandler):
    def take_snapshot(self) -> Iterator[bytes]:
        return iter([])

    def begin_restore(self) -> None:
        pass

    def restore_chunk(self, data: bytes) -> None:
        pass

    def end_restore(self) -> None:
        pass


@implementer(IStateHandler)
class DurableStateful(Stateful, DurableRecorder):
    pass


class FetchingTests(SynchronousTestCase):
    def test_state_handlers(self) -> None:
        """
        Only handlers with state and no position of their own are restored
        by snapshot.
        """
        stateful = Stateful()
        handlers = [RecordingHandler(), stateful, DurableStateful()]
        self.assertEqual(state_handlers(handlers), [stateful])

    def test_asks_each_in_turn(self) -> None:
        fetching = FetchingState(5, 1, ["b", "c"])
        self.assertEqual(fetching.next_fetch(), ("b", FetchState(5, 1)))
        fetching.started = True
        fetching.received = 10
        fetching.refused("b", "it left the group")
        self.assertEqual(fetching.next_fetch(), ("c", FetchState(5, 1)))
        # A new attempt starts from scratch.
        self.assertEqual((fetching.started, fetching.received), (False, 0))
        fetching.refused("c", "'c' is catching up itself")
        self.assertIsNone(fetching.next_fetch())
        self.assertEqual(
            fetching.why_not(),
            "no member could give the state of its 1 state handler(s) (b: it left"
            " the group; c: 'c' is catching up itself)",
        )
