"""
Tests for L{isis_twisted.core.linkrules}: a link's sequence numbers, the
back-off of refused dials and the phases of one connection's handshake, on
their own (no sockets, no reactor, no L{isis_twisted.net.connection}).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.control import ControlFrame, decode_control, encode_control
from isis_twisted.core.engine import Frame
from isis_twisted.core.linkrules import (
    REFUSAL_FIRST_DELAY,
    AnyFrame,
    ConnectionState,
    LinkError,
    LinkSequence,
    Phase,
    RedialBackoff,
    Route,
    Wrong,
)
from isis_twisted.core.views import Leave, Suspect
from isis_twisted.core.wire import (
    FATAL_REFUSALS,
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_OTHER,
    REFUSED_SECRET,
    Ack,
    Auth,
    Data,
    Hello,
    Here,
    Refuse,
    Who,
    decode,
    encode_body,
)

GROUP = "chat"
MEMBERS = ("alice", "bob", "carol")


def engine_frame(n: int, size: int = 3) -> Frame:
    """
    An engine frame with one message of C{size} bytes stamped C{n}.
    """
    return Frame(0, n, ((n, b"m" * size),))


def send_data(sequence: LinkSequence, n: int, size: int = 3) -> tuple[bytes, bytes]:
    """
    Number one DATA frame on C{sequence}.

    @return: Its head and body.
    """
    body = encode_body(engine_frame(n, size))
    return sequence.number_data(engine_frame(n, size), body), body


def unacked_seqs(sequence: LinkSequence) -> list[int]:
    """
    The sequence numbers C{sequence} holds unacknowledged, oldest first.
    """
    return [seq for seq, _, _ in sequence.unacked]


def held(sequence: LinkSequence, count: int) -> None:
    """
    Take the peer's frames 1 to C{count} in order.
    """
    for seq in range(sequence.received + 1, count + 1):
        assert sequence.in_order(seq)
        sequence.accepted(seq, ack_every=1000)


class NumberingTests(SynchronousTestCase):
    """
    L{LinkSequence.number_data} and L{LinkSequence.number_control} number
    frames on one sequence and keep them until acknowledged.
    """

    def test_data_numbered_from_one(self) -> None:
        """
        DATA frames get 1, 2, 3 ..., and each head, with its body, is a DATA
        frame of that number that carries what is held of the peer's frames.
        """
        sequence = LinkSequence()
        held(sequence, 5)
        head1, body1 = send_data(sequence, 1)
        head2, body2 = send_data(sequence, 2)
        self.assertEqual(decode(head1 + body1), Data(1, 5, engine_frame(1)))
        self.assertEqual(decode(head2 + body2), Data(2, 5, engine_frame(2)))
        self.assertEqual(sequence.next_seq, 3)
        self.assertEqual(list(sequence.unacked), [(1, head1, body1), (2, head2, body2)])
        self.assertEqual(
            sequence.unacked_bytes, len(head1) + len(body1) + len(head2) + len(body2)
        )

    def test_control_on_the_data_sequence(self) -> None:
        """
        CONTROL frames take their numbers from the sequence DATA frames
        take: DATA, CONTROL, DATA are 1, 2, 3, and the CONTROL frame is kept
        whole with an empty body.
        """
        sequence = LinkSequence()
        held(sequence, 2)
        head1, body1 = send_data(sequence, 1)
        raw = sequence.number_control(Leave(0))
        head3, body3 = send_data(sequence, 3)
        self.assertEqual(decode_control(raw), ControlFrame(2, 2, Leave(0)))
        self.assertEqual(raw, encode_control(ControlFrame(2, 2, Leave(0))))
        self.assertEqual(decode(head3 + body3), Data(3, 2, engine_frame(3)))
        self.assertEqual(
            list(sequence.unacked),
            [(1, head1, body1), (2, raw, b""), (3, head3, body3)],
        )
        self.assertEqual(
            sequence.unacked_bytes,
            len(head1) + len(body1) + len(raw) + len(head3) + len(body3),
        )
        self.assertEqual(sequence.next_seq, 4)

    def test_numbering_tells_nothing(self) -> None:
        """
        Numbering a frame does not count as telling the peer what is held:
        that is L{LinkSequence.carried}, once the frame was sent.
        """
        sequence = LinkSequence()
        held(sequence, 2)
        send_data(sequence, 1)
        sequence.number_control(Leave(0))
        self.assertEqual(sequence.told, 0)
        sequence.carried()
        self.assertEqual(sequence.told, 2)


class AcknowledgedTests(SynchronousTestCase):
    """
    L{LinkSequence.acknowledged} forgets exactly the frames the peer holds.
    """

    def setUp(self) -> None:
        self.sequence = LinkSequence()
        self.sizes: dict[int, int] = {}
        for n in range(1, 5):
            head, body = send_data(self.sequence, n, size=n * 10)
            self.sizes[n] = len(head) + len(body)

    def test_forgets_up_to_ack(self) -> None:
        """
        An ACK of 2 forgets frames 1 and 2, keeps 3 and 4 and their size,
        and says it freed some.
        """
        self.assertTrue(self.sequence.acknowledged(2))
        self.assertEqual(unacked_seqs(self.sequence), [3, 4])
        self.assertEqual(self.sequence.unacked_bytes, self.sizes[3] + self.sizes[4])

    def test_older_ack_changes_nothing(self) -> None:
        """
        An ACK older than (or the same as) one already taken frees nothing
        and says so; ACKs may arrive out of order over two connections.
        """
        self.sequence.acknowledged(3)
        for ack in (0, 1, 2, 3):
            self.assertFalse(self.sequence.acknowledged(ack))
            self.assertEqual(unacked_seqs(self.sequence), [4])
            self.assertEqual(self.sequence.unacked_bytes, self.sizes[4])

    def test_ack_zero_of_nothing(self) -> None:
        """
        On a link that sent nothing, an ACK of 0 is fine and frees nothing.
        """
        self.assertFalse(LinkSequence().acknowledged(0))

    def test_ack_all(self) -> None:
        """
        An ACK of the last frame sent forgets everything.
        """
        self.assertTrue(self.sequence.acknowledged(4))
        self.assertEqual(list(self.sequence.unacked), [])
        self.assertEqual(self.sequence.unacked_bytes, 0)

    def test_ack_of_frame_never_sent(self) -> None:
        """
        An ACK of a frame never sent raises L{LinkError}, saying how many
        were sent, and changes nothing.
        """
        e = self.assertRaises(LinkError, self.sequence.acknowledged, 5)
        self.assertEqual(str(e), "acknowledges frame 5, but only 4 were sent")
        self.assertEqual(unacked_seqs(self.sequence), [1, 2, 3, 4])
        self.assertEqual(self.sequence.unacked_bytes, sum(self.sizes.values()))

    def test_ack_on_fresh_link(self) -> None:
        """
        On a link that sent nothing, an ACK of 1 is of a frame never sent.
        """
        e = self.assertRaises(LinkError, LinkSequence().acknowledged, 1)
        self.assertEqual(str(e), "acknowledges frame 1, but only 0 were sent")


class ReceivingTests(SynchronousTestCase):
    """
    L{LinkSequence.in_order}, L{LinkSequence.accepted} and what the peer is
    told of the frames held.
    """

    def test_next_in_order(self) -> None:
        """
        The next frame is in order; taking its number does not yet hold it
        (L{LinkSequence.accepted} does).
        """
        sequence = LinkSequence()
        self.assertTrue(sequence.in_order(1))
        self.assertEqual(sequence.received, 0)
        sequence.accepted(1, ack_every=4)
        self.assertEqual(sequence.received, 1)
        self.assertTrue(sequence.in_order(2))
        self.assertEqual(sequence.duplicates, 0)

    def test_duplicates_counted(self) -> None:
        """
        A frame already held is not in order, and is counted as a duplicate.
        """
        sequence = LinkSequence()
        held(sequence, 3)
        self.assertFalse(sequence.in_order(3))
        self.assertFalse(sequence.in_order(1))
        self.assertEqual(sequence.duplicates, 2)
        self.assertEqual(sequence.received, 3)

    def test_gap(self) -> None:
        """
        A frame with frames missing before it raises L{LinkError} with the
        number expected, and is not counted as a duplicate.
        """
        sequence = LinkSequence()
        e = self.assertRaises(LinkError, sequence.in_order, 2)
        self.assertEqual(str(e), "frame 2 arrived, but the next expected is 1")
        held(sequence, 2)
        e = self.assertRaises(LinkError, sequence.in_order, 4)
        self.assertEqual(str(e), "frame 4 arrived, but the next expected is 3")
        self.assertEqual(sequence.duplicates, 0)
        self.assertEqual(sequence.received, 2)

    def test_ack_now_at_ack_every(self) -> None:
        """
        L{LinkSequence.accepted} says to acknowledge at once exactly when
        C{ack_every} frames are held that the peer was not told of.
        """
        sequence = LinkSequence()
        self.assertEqual(
            [sequence.accepted(seq, ack_every=3) for seq in range(1, 4)],
            [False, False, True],
        )
        self.assertEqual(sequence.ack_due(), 3)
        self.assertEqual(
            [sequence.accepted(seq, ack_every=3) for seq in range(4, 8)],
            [False, False, True, True],
        )

    def test_carried_counts_as_told(self) -> None:
        """
        A frame that carried the acknowledgement counts: C{ack_every} frames
        are counted from what it told.
        """
        sequence = LinkSequence()
        sequence.accepted(1, ack_every=3)
        sequence.accepted(2, ack_every=3)
        sequence.carried()
        self.assertEqual(sequence.told, 2)
        self.assertFalse(sequence.accepted(3, ack_every=3))
        self.assertFalse(sequence.accepted(4, ack_every=3))
        self.assertTrue(sequence.accepted(5, ack_every=3))

    def test_ack_due(self) -> None:
        """
        L{LinkSequence.ack_due} gives what is held when the peer was not
        told all of it, and then counts it told; otherwise L{None}.
        """
        sequence = LinkSequence()
        self.assertIsNone(sequence.ack_due())
        held(sequence, 2)
        self.assertEqual(sequence.ack_due(), 2)
        self.assertEqual(sequence.told, 2)
        self.assertIsNone(sequence.ack_due())
        held(sequence, 3)
        sequence.carried()
        self.assertIsNone(sequence.ack_due())

    def test_keepalive(self) -> None:
        """
        A keep-alive carries what is held, told or not, and counts it told.
        """
        sequence = LinkSequence()
        self.assertEqual(sequence.keepalive(), 0)
        held(sequence, 4)
        self.assertEqual(sequence.keepalive(), 4)
        self.assertEqual(sequence.told, 4)
        self.assertIsNone(sequence.ack_due())
        self.assertEqual(sequence.keepalive(), 4)


class IncarnationTests(SynchronousTestCase):
    """
    Which incarnation of the peer a link's numbers belong to, and starting
    afresh with another one.
    """

    def test_first_recorded(self) -> None:
        """
        The first incarnation a handshake tells is recorded and is not
        another one; the same one again is not either.
        """
        sequence = LinkSequence()
        self.assertIsNone(sequence.incarnation)
        self.assertFalse(sequence.is_another(7))
        self.assertEqual(sequence.incarnation, 7)
        self.assertFalse(sequence.is_another(7))

    def test_another(self) -> None:
        """
        Another incarnation than the recorded one is another, and is not
        recorded.
        """
        sequence = LinkSequence()
        sequence.is_another(7)
        self.assertTrue(sequence.is_another(8))
        self.assertEqual(sequence.incarnation, 7)

    def test_answer(self) -> None:
        """
        A HELLO answer tells the recorded incarnation what is held of its
        frames, and another incarnation 0.
        """
        sequence = LinkSequence()
        sequence.is_another(7)
        held(sequence, 3)
        self.assertEqual(sequence.answer(7), 3)
        self.assertEqual(sequence.answer(8), 0)

    def test_answer_before_any_incarnation(self) -> None:
        """
        Before any incarnation was recorded, every incarnation is another.
        """
        sequence = LinkSequence()
        held(sequence, 2)
        self.assertEqual(sequence.answer(0), 0)

    def test_untouched(self) -> None:
        """
        A link is untouched until a frame is numbered for the peer or one of
        the peer's frames is held.
        """
        self.assertTrue(LinkSequence().untouched)
        sending = LinkSequence()
        send_data(sending, 1)
        self.assertFalse(sending.untouched)
        controlling = LinkSequence()
        controlling.number_control(Leave(0))
        self.assertFalse(controlling.untouched)
        receiving = LinkSequence()
        held(receiving, 1)
        self.assertFalse(receiving.untouched)

    def test_restart(self) -> None:
        """
        L{LinkSequence.restart} records the new incarnation and forgets every
        number, frame and acknowledgement of the one before, so numbering
        starts at 1 again; the count of duplicates, a statistic of the link,
        is kept.
        """
        sequence = LinkSequence()
        sequence.is_another(7)
        send_data(sequence, 1)
        sequence.number_control(Suspect(0, ("carol",)))
        held(sequence, 3)
        sequence.in_order(2)
        sequence.carried()
        sequence.restart(9)
        self.assertEqual(sequence.incarnation, 9)
        self.assertEqual(sequence.next_seq, 1)
        self.assertEqual(list(sequence.unacked), [])
        self.assertEqual(sequence.unacked_bytes, 0)
        self.assertEqual(sequence.received, 0)
        self.assertEqual(sequence.told, 0)
        self.assertEqual(sequence.duplicates, 1)
        self.assertTrue(sequence.untouched)
        self.assertFalse(sequence.is_another(9))
        self.assertEqual(sequence.answer(9), 0)
        self.assertRaises(LinkError, sequence.acknowledged, 1)
        self.assertTrue(sequence.in_order(1))
        head, body = send_data(sequence, 1)
        self.assertEqual(decode(head + body), Data(1, 0, engine_frame(1)))


# One step of a link's sending side: ("data", body size), ("control", view)
# or ("ack", a fraction of the way from the highest ack to the last sent).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.integers(0, 200)),
        st.tuples(st.just("control"), st.integers(0, 1000)),
        st.tuples(st.just("ack"), st.floats(0.0, 1.0)),
    ),
    max_size=40,
)


class SequencePropertyTests(SynchronousTestCase):
    """
    L{LinkSequence}'s resend buffer under any run of sends and valid
    acknowledgements.
    """

    @settings(max_examples=150, deadline=None)
    @given(steps)
    def test_unacked_after_any_run(self, run: list[tuple[str, float]]) -> None:
        """
        For any interleaving of DATA and CONTROL sends and valid ACKs (older
        ones included), the frames kept are exactly those above the highest
        ACK, their size is C{unacked_bytes}, and L{LinkSequence.acknowledged}
        said it freed frames exactly when the highest ACK passed one.
        """
        sequence = LinkSequence()
        sizes: dict[int, int] = {}
        highest = 0
        for kind, value in run:
            sent = sequence.next_seq - 1
            if kind == "data":
                head, body = send_data(sequence, sent + 1, size=int(value))
                sizes[sent + 1] = len(head) + len(body)
            elif kind == "control":
                raw = sequence.number_control(Leave(int(value)))
                sizes[sent + 1] = len(raw)
            else:
                # Anything from 0 to the last frame sent, below the highest
                # one taken too (an older acknowledgement).
                ack = round(value * sent)
                freed = sequence.acknowledged(ack)
                self.assertEqual(freed, ack > highest)
                highest = max(highest, ack)
            self.assertEqual(
                unacked_seqs(sequence), list(range(highest + 1, sequence.next_seq))
            )
            self.assertEqual(
                sequence.unacked_bytes,
                sum(size for seq, size in sizes.items() if seq > highest),
            )
            self.assertEqual(
                sequence.unacked_bytes,
                sum(len(head) + len(body) for _, head, body in sequence.unacked),
            )
        self.assertRaises(LinkError, sequence.acknowledged, sequence.next_seq)


class RedialBackoffTests(SynchronousTestCase):
    """
    L{RedialBackoff}: how soon to redial a peer that keeps refusing.
    """

    def test_no_refusals(self) -> None:
        """
        Without refusals the wait is the base policy's, whatever it is.
        """
        backoff = RedialBackoff()
        self.assertEqual(backoff.delay(0.05, 30.0), 0.05)
        self.assertEqual(backoff.delay(60.0, 30.0), 60.0)
        self.assertEqual(backoff.delay(0.0, 30.0), 0.0)

    def test_doubling(self) -> None:
        """
        The wait after the first refusal in a row is L{REFUSAL_FIRST_DELAY},
        and doubles with each further one.
        """
        backoff = RedialBackoff()
        waits = []
        for _ in range(8):
            backoff.refused_with(REFUSED_NAME, "no")
            waits.append(backoff.delay(0.0, 1000.0))
        self.assertEqual(REFUSAL_FIRST_DELAY, 0.1)
        self.assertEqual(waits, [REFUSAL_FIRST_DELAY * 2**k for k in range(8)])

    def test_capped(self) -> None:
        """
        The wait after refusals is at most C{longest}, however many there
        were (no overflow after very many).
        """
        backoff = RedialBackoff()
        for _ in range(5):
            backoff.failed()
        self.assertEqual(backoff.delay(0.0, 1.0), 1.0)
        self.assertEqual(backoff.delay(0.0, 1.7), 1.6)
        backoff.refusals = 5000
        self.assertEqual(backoff.delay(0.0, 30.0), 30.0)

    def test_never_below_base(self) -> None:
        """
        The wait after refusals is never below the base policy's.
        """
        backoff = RedialBackoff()
        backoff.failed()
        self.assertEqual(backoff.delay(5.0, 30.0), 5.0)
        self.assertEqual(backoff.delay(0.01, 30.0), REFUSAL_FIRST_DELAY)
        for _ in range(20):
            backoff.failed()
        self.assertEqual(backoff.delay(45.0, 30.0), 45.0)

    @settings(max_examples=100, deadline=None)
    @given(
        st.integers(0, 200),
        st.floats(0.0, 100.0),
        st.floats(0.0, 100.0),
    )
    def test_bounds(self, refusals: int, wait: float, longest: float) -> None:
        """
        The wait is never below the base one and, after refusals, never above
        the larger of the base one and C{longest}.
        """
        backoff = RedialBackoff(refusals=refusals)
        delay = backoff.delay(wait, longest)
        self.assertGreaterEqual(delay, wait)
        if refusals:
            self.assertLessEqual(delay, max(wait, longest))
        else:
            self.assertEqual(delay, wait)

    def test_fatal_codes(self) -> None:
        """
        A refusal is fatal exactly when its code is one of L{FATAL_REFUSALS}
        (the group and the secret); the fatal one is kept with its reason.
        """
        self.assertEqual(FATAL_REFUSALS, {REFUSED_GROUP, REFUSED_SECRET})
        for code in range(256):
            backoff = RedialBackoff()
            fatal = backoff.refused_with(code, f"reason {code}")
            self.assertEqual(fatal, code in FATAL_REFUSALS, code)
            self.assertEqual(
                backoff.fatal,
                (code, f"reason {code}") if code in FATAL_REFUSALS else None,
            )
            self.assertEqual((backoff.refusals, backoff.refused), (1, 1))

    def test_last_fatal_kept(self) -> None:
        """
        The last fatal refusal is the one kept, and a later refusal that a
        retry can change leaves it until the peer serves a dial.
        """
        backoff = RedialBackoff()
        backoff.refused_with(REFUSED_GROUP, "wrong group")
        self.assertTrue(backoff.refused_with(REFUSED_SECRET, "wrong secret"))
        self.assertEqual(backoff.fatal, (REFUSED_SECRET, "wrong secret"))
        self.assertFalse(backoff.refused_with(REFUSED_MEMBERS, "members"))
        self.assertFalse(backoff.refused_with(REFUSED_OTHER, "other"))
        self.assertEqual(backoff.fatal, (REFUSED_SECRET, "wrong secret"))
        self.assertEqual((backoff.refusals, backoff.refused), (4, 4))

    def test_failed(self) -> None:
        """
        A dial that closed before its handshake completed counts as a
        refusal in a row, but not as a REFUSE received, and leaves the fatal
        one.
        """
        backoff = RedialBackoff()
        backoff.refused_with(REFUSED_GROUP, "wrong group")
        backoff.failed()
        backoff.failed()
        self.assertEqual((backoff.refusals, backoff.refused), (3, 1))
        self.assertEqual(backoff.fatal, (REFUSED_GROUP, "wrong group"))
        self.assertEqual(backoff.delay(0.0, 30.0), REFUSAL_FIRST_DELAY * 4)

    def test_served(self) -> None:
        """
        A served dial ends the refusals in a row and forgets the fatal one;
        the count of REFUSEs received stays.  The next refusal starts the
        back-off again from L{REFUSAL_FIRST_DELAY}.
        """
        backoff = RedialBackoff()
        backoff.refused_with(REFUSED_SECRET, "wrong secret")
        backoff.refused_with(REFUSED_NAME, "name")
        backoff.failed()
        backoff.served()
        self.assertEqual(backoff.refusals, 0)
        self.assertIsNone(backoff.fatal)
        self.assertEqual(backoff.refused, 2)
        self.assertEqual(backoff.delay(0.05, 30.0), 0.05)
        backoff.failed()
        self.assertEqual(backoff.delay(0.0, 30.0), REFUSAL_FIRST_DELAY)


HELLO = Hello(GROUP, "bob", "alice", 7, 0, members=MEMBERS)

# One of every frame a connection can carry.
FRAMES: dict[str, AnyFrame] = {
    "hello": HELLO,
    "who": Who(GROUP),
    "here": Here("bob", 0, MEMBERS),
    "auth": Auth(b"m" * 32),
    "data": Data(1, 0, engine_frame(1)),
    "control": ControlFrame(1, 0, Leave(0)),
    "ack": Ack(0),
    "refuse": Refuse("no", REFUSED_GROUP),
}

NOT_HELLO = Wrong("the first frame was not a HELLO", refuse=True)
NOT_AUTH = Wrong("expected the group-secret proof (AUTH)", refuse=True)


def in_phase(phase: Phase, dialed: bool) -> ConnectionState:
    """
    A connection brought to C{phase} by its own transitions.
    """
    state = ConnectionState(dialed=dialed)
    if phase is Phase.PROVING:
        state.prove(HELLO)
    elif phase is Phase.HELD:
        state.hold(HELLO)
    elif phase is Phase.OPEN:
        state.open()
    elif phase is Phase.CLOSED:
        state.close()
    assert state.phase is phase
    return state


class RouteTests(SynchronousTestCase):
    """
    L{ConnectionState.route}: what every frame means in every phase, on
    dialed and accepted connections.
    """

    def assert_routes(
        self, phase: Phase, dialed: bool, expected: dict[str, Route | Wrong]
    ) -> None:
        """
        Every frame of L{FRAMES} routes on a connection in C{phase} as
        C{expected} says.
        """
        self.assertEqual(set(expected), set(FRAMES))
        state = in_phase(phase, dialed)
        routed = {kind: state.route(frame) for kind, frame in FRAMES.items()}
        self.assertEqual(routed, expected)
        # Routing changes nothing.
        self.assertIs(state.phase, phase)

    def greeting(self, dialed: bool) -> dict[str, Route | Wrong]:
        """
        The routes in every phase before the handshake is done but
        L{Phase.PROVING}.
        """
        return {
            "hello": Route.HELLO,
            "who": NOT_HELLO if dialed else Route.WHO,
            "here": NOT_HELLO,
            "auth": NOT_HELLO,
            "data": NOT_HELLO,
            "control": NOT_HELLO,
            "ack": NOT_HELLO,
            "refuse": Route.REFUSED,
        }

    def test_greeting_accepted(self) -> None:
        """
        An accepted connection waiting for the first frame takes a HELLO, a
        WHO (discovery) or a REFUSE; anything else is refused as not a
        HELLO.
        """
        self.assert_routes(Phase.GREETING, False, self.greeting(dialed=False))

    def test_greeting_dialed(self) -> None:
        """
        A dialed connection waiting for the answer takes a HELLO or a
        REFUSE; a WHO, which only a dialer sends, is not a HELLO.
        """
        self.assert_routes(Phase.GREETING, True, self.greeting(dialed=True))

    def test_proving(self) -> None:
        """
        While proving, on either side, only the AUTH is taken (and a
        REFUSE); anything else, a second HELLO too, is refused.
        """
        for dialed in (False, True):
            self.assert_routes(
                Phase.PROVING,
                dialed,
                {
                    "hello": NOT_AUTH,
                    "who": NOT_AUTH,
                    "here": NOT_AUTH,
                    "auth": Route.AUTH,
                    "data": NOT_AUTH,
                    "control": NOT_AUTH,
                    "ack": NOT_AUTH,
                    "refuse": Route.REFUSED,
                },
            )

    def test_held_and_closed(self) -> None:
        """
        A held or closed connection routes as one before its handshake (the
        connection reads nothing of it but a REFUSE, see
        L{isis_twisted.net.connection}).
        """
        self.assert_routes(Phase.HELD, False, self.greeting(dialed=False))
        for dialed in (False, True):
            self.assert_routes(Phase.CLOSED, dialed, self.greeting(dialed))

    def open_routes(self) -> dict[str, Route | Wrong]:
        """
        The routes on an open connection that do not depend on its side.
        """
        return {
            "hello": Wrong("a second HELLO on an open connection", refuse=False),
            "auth": Wrong("a second AUTH on an open connection", refuse=False),
            "who": Wrong("a WHO on an open connection", refuse=False),
            "here": Wrong("a HERE on an open connection", refuse=False),
            "ack": Route.ACK,
            "refuse": Route.REFUSED,
        }

    def test_open_accepted(self) -> None:
        """
        An open accepted connection takes DATA, CONTROL and ACK (keep-alives);
        a second HELLO or AUTH, a WHO or a HERE breaks the protocol and is
        not refused.
        """
        self.assert_routes(
            Phase.OPEN,
            False,
            {**self.open_routes(), "data": Route.DATA, "control": Route.CONTROL},
        )

    def test_open_dialed(self) -> None:
        """
        On an open dialed connection DATA and CONTROL go the wrong way: they
        break the protocol and are not refused; ACKs are taken.
        """
        self.assert_routes(
            Phase.OPEN,
            True,
            {
                **self.open_routes(),
                "data": Wrong("DATA on a connection this node dialed", refuse=False),
                "control": Wrong(
                    "CONTROL on a connection this node dialed", refuse=False
                ),
            },
        )

    def test_refuse_in_every_phase(self) -> None:
        """
        A REFUSE, whatever its code, is taken in every phase on either side.
        """
        for phase in Phase:
            for dialed in (False, True):
                state = in_phase(phase, dialed)
                for code in range(5):
                    self.assertIs(state.route(Refuse("x", code)), Route.REFUSED)


class PhaseTests(SynchronousTestCase):
    """
    L{ConnectionState}'s transitions and what they say.
    """

    def test_new(self) -> None:
        """
        A new connection waits for a HELLO, was never open and holds no HELLO
        and no answer.
        """
        for dialed in (False, True):
            state = ConnectionState(dialed=dialed)
            self.assertIs(state.dialed, dialed)
            self.assertIs(state.phase, Phase.GREETING)
            self.assertEqual(
                (state.is_open, state.closed, state.held, state.opened),
                (False, False, False, False),
            )
            self.assertIsNone(state.hello)
            self.assertIsNone(state.told)

    def test_prove(self) -> None:
        """
        Proving keeps the HELLO (for the MAC) and is not open.
        """
        state = ConnectionState(dialed=True)
        state.prove(HELLO)
        self.assertIs(state.phase, Phase.PROVING)
        self.assertIs(state.hello, HELLO)
        self.assertEqual((state.is_open, state.held, state.closed), (False,) * 3)

    def test_hold_and_release(self) -> None:
        """
        A held connection keeps the HELLO it was held for; released, it is
        back before the handshake's end, the HELLO still kept.
        """
        state = ConnectionState(dialed=False)
        state.prove(HELLO)
        state.hold(HELLO)
        self.assertIs(state.phase, Phase.HELD)
        self.assertTrue(state.held)
        self.assertIs(state.hello, HELLO)
        self.assertEqual((state.is_open, state.closed), (False, False))
        state.release()
        self.assertIs(state.phase, Phase.GREETING)
        self.assertFalse(state.held)
        self.assertIs(state.hello, HELLO)

    def test_open_then_close(self) -> None:
        """
        Opened, a connection is open and counts as ever opened; closed, it is
        closed and no longer open, but still was opened.
        """
        state = ConnectionState(dialed=True)
        state.open()
        self.assertIs(state.phase, Phase.OPEN)
        self.assertEqual(
            (state.is_open, state.opened, state.closed), (True,) * 2 + (False,)
        )
        state.close()
        self.assertIs(state.phase, Phase.CLOSED)
        self.assertEqual(
            (state.is_open, state.opened, state.closed), (False, True, True)
        )

    def test_closed_before_open(self) -> None:
        """
        A connection that closes in its handshake, held or not, was never
        opened (its dial counts against the peer's back-off).
        """
        for start in (None, "prove", "hold"):
            state = ConnectionState(dialed=start != "hold")
            if start == "prove":
                state.prove(HELLO)
            elif start == "hold":
                state.hold(HELLO)
            state.close()
            self.assertTrue(state.closed)
            self.assertFalse(state.held)
            self.assertFalse(state.opened)
