"""
Tests for L{isis_twisted.core.handshake}: the checks of a peer's HELLO, the
proof of the group secret, the sentence of a member locked out of its group
and the answer to a client that dialed a peer port, on their own (no
sockets, no reactor, no L{isis_twisted.net.connection}).
"""

from __future__ import annotations

import struct

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.core.handshake import (
    HANDSHAKE_MAX_FRAME,
    HelloPolicy,
    Refusal,
    amp_box,
    amp_tag,
    handshake_mac,
    locked_out_sentence,
    looks_like_amp,
    members_differ,
    names,
)
from isis_twisted.core.wire import (
    REFUSED_GROUP,
    REFUSED_MEMBERS,
    REFUSED_NAME,
    REFUSED_SECRET,
    Hello,
)

GROUP = "chat"
MEMBERS = ("alice", "bob", "carol")
# The order the members were configured in, which sentences keep.
CONFIGURED = ("carol", "alice", "bob")
STRANGER_ADDRESS = "tcp:host=10.0.0.9:port=9001"


def policy(
    *,
    dialed: str | None = None,
    has_secret: bool = False,
    require_certificate: bool = False,
) -> HelloPolicy:
    """
    What member C{alice} of C{MEMBERS} checks HELLOs against.
    """
    return HelloPolicy(
        group=GROUP,
        me="alice",
        members=MEMBERS,
        configured=CONFIGURED,
        dialed=dialed,
        has_secret=has_secret,
        require_certificate=require_certificate,
    )


def code_of(refusal: Refusal | None) -> int | None:
    """
    The code of C{refusal}, or L{None} if there is none.
    """
    return None if refusal is None else refusal.code


# What member bob says to alice, all in order.
BOB = Hello(GROUP, "bob", "alice", 7, 0, members=MEMBERS)


class IdentityTests(SynchronousTestCase):
    """
    L{HelloPolicy.identity}: the group, names and member list a HELLO gives.
    """

    def test_member(self) -> None:
        """
        A known member's HELLO, meant for this member, in its group and with
        its member list, passes, accepted or dialed.
        """
        self.assertIsNone(policy().identity(BOB, known=True))
        self.assertIsNone(policy(dialed="bob").identity(BOB, known=True))

    def test_wrong_group(self) -> None:
        """
        Another group is refused with C{REFUSED_GROUP}, before any other
        check: wrong names and members too are not what is said.
        """
        expected = Refusal(
            "group 'other' is not this node's group 'chat'", REFUSED_GROUP
        )
        self.assertEqual(
            policy().identity(attrs.evolve(BOB, group="other"), known=True), expected
        )
        worst = Hello("other", "dave", "carol", 7, 0, members=("x",))
        self.assertEqual(policy().identity(worst, known=False), expected)
        self.assertEqual(policy(dialed="bob").identity(worst, known=True), expected)
        self.assertEqual(policy().wrong_group("other"), expected)
        self.assertIsNone(policy().wrong_group(GROUP))

    def test_dialed_another(self) -> None:
        """
        On a dialed connection, an answer from another member than the one
        dialed is refused with C{REFUSED_NAME}, before the member it meant
        and the member lists are checked.
        """
        carol = Hello(GROUP, "carol", "bob", 7, 0, members=("x",))
        self.assertEqual(
            policy(dialed="bob").identity(carol, known=True),
            Refusal(
                "dialed member 'bob' but 'carol' answered: check the peer addresses",
                REFUSED_NAME,
            ),
        )

    def test_meant_for_another(self) -> None:
        """
        A HELLO meant for another member is refused with C{REFUSED_NAME},
        before the member lists are checked.
        """
        wrong = attrs.evolve(BOB, peer="carol", members=("x",))
        expected = Refusal(
            "'bob' meant to reach member 'carol', but this is 'alice':"
            " check the peer addresses of 'bob'",
            REFUSED_NAME,
        )
        self.assertEqual(policy().identity(wrong, known=True), expected)
        self.assertEqual(policy(dialed="bob").identity(wrong, known=True), expected)

    def test_members_differ(self) -> None:
        """
        A HELLO with another member list is refused with C{REFUSED_MEMBERS}
        and the sentence of L{members_differ}.
        """
        other = attrs.evolve(BOB, members=("alice", "bob", "dave"))
        self.assertEqual(
            policy().identity(other, known=True),
            Refusal(members_differ(other, "alice", MEMBERS), REFUSED_MEMBERS),
        )
        self.assertEqual(
            code_of(policy(dialed="bob").identity(other, known=True)),
            REFUSED_MEMBERS,
        )

    def test_members_before_unknown_name(self) -> None:
        """
        An unknown member with another member list is told of the lists (the
        mistake to fix first), not that it is not a member.
        """
        dave = Hello(GROUP, "dave", "alice", 7, 0, members=("alice", "dave"))
        self.assertEqual(code_of(policy().identity(dave, known=False)), REFUSED_MEMBERS)

    def test_no_members_listed(self) -> None:
        """
        A known member's HELLO that lists no members is refused with
        C{REFUSED_MEMBERS}, as a member list that differs.
        """
        bare = attrs.evolve(BOB, members=())
        self.assertEqual(
            policy().identity(bare, known=True),
            Refusal(members_differ(bare, "alice", MEMBERS), REFUSED_MEMBERS),
        )

    def test_not_a_member(self) -> None:
        """
        An unknown name that gives no address is refused with
        C{REFUSED_NAME}: not a member, the members named in their configured
        order; with an empty member list too (the name is the first
        mistake).
        """
        dave = Hello(GROUP, "dave", "alice", 7, 0, members=MEMBERS)
        expected = Refusal(
            "'dave' is not a member (members: carol, alice, bob)", REFUSED_NAME
        )
        self.assertEqual(policy().identity(dave, known=False), expected)
        self.assertEqual(
            policy().identity(attrs.evolve(dave, members=()), known=False), expected
        )

    def test_own_name(self) -> None:
        """
        A HELLO with this member's own name is refused with C{REFUSED_NAME},
        even if it gives an address (it is no stranger).
        """
        me = Hello(GROUP, "alice", "alice", 7, 0, members=MEMBERS)
        expected = Refusal("'alice' is this node's own name", REFUSED_NAME)
        self.assertEqual(policy().identity(me, known=False), expected)
        self.assertEqual(
            policy().identity(attrs.evolve(me, address=STRANGER_ADDRESS), False),
            expected,
        )

    def test_stranger(self) -> None:
        """
        An accepted connection from a member the group was not started with
        that gives its address passes, with the group's member list.
        """
        dave = Hello(
            GROUP, "dave", "alice", 7, 0, members=MEMBERS, address=STRANGER_ADDRESS
        )
        self.assertTrue(policy().is_stranger(dave, known=False))
        self.assertIsNone(policy().identity(dave, known=False))
        bare = attrs.evolve(dave, members=())
        self.assertEqual(code_of(policy().identity(bare, known=False)), REFUSED_MEMBERS)

    def test_not_strangers(self) -> None:
        """
        Only an unknown name, not a member's and not this member's own, that
        gives an address, on an accepted connection, is a stranger.
        """
        dave = Hello(
            GROUP, "dave", "alice", 7, 0, members=MEMBERS, address=STRANGER_ADDRESS
        )
        self.assertFalse(policy().is_stranger(dave, known=True))
        self.assertFalse(policy(dialed="dave").is_stranger(dave, known=False))
        self.assertFalse(policy().is_stranger(attrs.evolve(dave, address=""), False))
        self.assertFalse(policy().is_stranger(attrs.evolve(dave, member="bob"), False))
        self.assertFalse(
            policy().is_stranger(attrs.evolve(dave, member="alice"), False)
        )


class CredentialsTests(SynchronousTestCase):
    """
    L{HelloPolicy.credentials}: the certificate and the group secret.
    """

    def test_nothing_asked(self) -> None:
        """
        With no certificate required and no secret, a HELLO without a nonce
        passes, whatever certificate was presented.
        """
        self.assertIsNone(policy().credentials(BOB, None))
        self.assertIsNone(policy().credentials(BOB, "mallory"))

    def test_certificate_required(self) -> None:
        """
        When certificates are required, the one presented must name the
        HELLO's member: none, or another's, is refused with C{REFUSED_NAME}.
        """
        checks = policy(require_certificate=True)
        self.assertIsNone(checks.credentials(BOB, "bob"))
        self.assertEqual(
            checks.credentials(BOB, None),
            Refusal(
                "'bob' presented no certificate: a member's certificate must name it",
                REFUSED_NAME,
            ),
        )
        self.assertEqual(
            checks.credentials(BOB, "carol"),
            Refusal(
                "'bob' presented the certificate of 'carol': a member's"
                " certificate must name it",
                REFUSED_NAME,
            ),
        )

    def test_certificate_before_secret(self) -> None:
        """
        A missing certificate is said before a secret mismatch.
        """
        checks = policy(require_certificate=True, has_secret=True)
        self.assertEqual(code_of(checks.credentials(BOB, None)), REFUSED_NAME)
        self.assertEqual(code_of(checks.credentials(BOB, "bob")), REFUSED_SECRET)

    def test_peer_has_secret(self) -> None:
        """
        A peer with a secret (a nonce) is refused with C{REFUSED_SECRET} by a
        member without one.
        """
        self.assertEqual(
            policy().credentials(attrs.evolve(BOB, nonce=b"n" * 32), None),
            Refusal(
                "the peer uses a group secret but this node has none"
                " (give every member the same --secret-file)",
                REFUSED_SECRET,
            ),
        )

    def test_peer_lacks_secret(self) -> None:
        """
        A peer without a secret (no nonce) is refused with C{REFUSED_SECRET}
        by a member with one; with a nonce it passes (the proof comes next).
        """
        checks = policy(has_secret=True)
        self.assertEqual(
            checks.credentials(BOB, None),
            Refusal(
                "this group requires the group secret, and the peer has none"
                " (give every member the same --secret-file)",
                REFUSED_SECRET,
            ),
        )
        self.assertIsNone(checks.credentials(attrs.evolve(BOB, nonce=b"n" * 32), None))


class SentenceTests(SynchronousTestCase):
    """
    L{names} and L{members_differ}: the words of refusals.
    """

    def test_names(self) -> None:
        """
        Names are joined with commas, at most C{most} of them and then how
        many in all; none is "none".
        """
        self.assertEqual(names([]), "none")
        self.assertEqual(names(["a"]), "a")
        self.assertEqual(names([str(n) for n in range(8)]), "0, 1, 2, 3, 4, 5, 6, 7")
        self.assertEqual(
            names([str(n) for n in range(9)]), "0, 1, 2, 3, 4, 5, 6, 7 ... (9 in all)"
        )
        self.assertEqual(names(["a", "b", "c"], most=2), "a, b ... (3 in all)")

    def test_members_differ(self) -> None:
        """
        The sentence gives both lists and what each has that the other has
        not.
        """
        them = attrs.evolve(BOB, members=("alice", "bob", "dave"))
        self.assertEqual(
            members_differ(them, "alice", MEMBERS),
            "'bob' lists members alice, bob, dave; 'alice' lists alice, bob, carol"
            " ('bob' omits carol; only 'bob' lists dave): every member must be"
            " given the same members",
        )

    def test_members_differ_one_way(self) -> None:
        """
        Only what differs is said: a shorter list omits, a longer one lists
        more, and no list is "none".
        """
        short = attrs.evolve(BOB, members=("alice", "bob"))
        self.assertEqual(
            members_differ(short, "alice", MEMBERS),
            "'bob' lists members alice, bob; 'alice' lists alice, bob, carol"
            " ('bob' omits carol): every member must be given the same members",
        )
        long = attrs.evolve(BOB, members=("alice", "bob", "carol", "dave"))
        self.assertEqual(
            members_differ(long, "alice", MEMBERS),
            "'bob' lists members alice, bob, carol, dave; 'alice' lists alice, bob,"
            " carol (only 'bob' lists dave): every member must be given the same"
            " members",
        )
        bare = attrs.evolve(BOB, members=())
        self.assertIn(
            "'bob' lists members none;", members_differ(bare, "alice", MEMBERS)
        )


SECRET = b"secret"
DIALER = ("bob", 7, b"n" * 32)
ACCEPTOR = ("alice", 9, b"o" * 32)


def mac(
    secret: bytes = SECRET,
    role: bytes = b"dialer",
    group: str = GROUP,
    dialer: tuple[str, int, bytes] = DIALER,
    acceptor: tuple[str, int, bytes] = ACCEPTOR,
    members: tuple[str, ...] = MEMBERS,
) -> bytes:
    """
    L{handshake_mac} of one handshake, with what is given changed.
    """
    return handshake_mac(secret, role, group, dialer, acceptor, members)


class HandshakeMacTests(SynchronousTestCase):
    """
    L{handshake_mac}: the proof of the group secret for one connection.
    """

    def test_deterministic(self) -> None:
        """
        The same handshake gives the same 32-byte MAC, the one version 2 of
        the transcript gives (members of older and newer nodes must agree).
        """
        self.assertEqual(mac(), mac())
        self.assertEqual(
            mac().hex(),
            "ff59072553a39c1748efb9a05e5e48bedfad92f689fb4a3c9c0befe941889f13",
        )

    def test_every_part_counts(self) -> None:
        """
        Changing any one part of the handshake (secret, role, group, either
        side's name, incarnation or nonce, the member list) changes the MAC,
        and no two such changes give the same one.
        """
        bob, seven, nonce = DIALER
        alice, nine, other = ACCEPTOR
        macs = [
            mac(),
            mac(secret=b"secreT"),
            mac(role=b"acceptor"),
            mac(group="chaT"),
            mac(dialer=("dave", seven, nonce)),
            mac(dialer=(bob, 8, nonce)),
            mac(dialer=(bob, seven, b"N" + nonce[1:])),
            mac(acceptor=("dave", nine, other)),
            mac(acceptor=(alice, 10, other)),
            mac(acceptor=(alice, nine, other[:-1] + b"O")),
            mac(members=("alice", "bob")),
            mac(members=("alice", "bob", "carol", "dave")),
            mac(members=("alice", "bob", "carl")),
        ]
        self.assertEqual(len(set(macs)), len(macs))

    def test_roles_differ(self) -> None:
        """
        The dialer's MAC is not the acceptor's, so neither can reflect the
        other's proof back; swapping the sides changes it too.
        """
        self.assertNotEqual(mac(role=b"dialer"), mac(role=b"acceptor"))
        self.assertNotEqual(mac(), mac(dialer=ACCEPTOR, acceptor=DIALER))

    def test_member_order(self) -> None:
        """
        The member list is taken sorted: the order it was configured in does
        not matter.
        """
        self.assertEqual(mac(members=("carol", "alice", "bob")), mac())
        self.assertEqual(mac(members=("bob", "carol", "alice")), mac())

    def test_names_not_merged(self) -> None:
        """
        Names are length-prefixed: moving letters between the group, the
        names or the members changes the MAC.
        """
        self.assertNotEqual(
            mac(dialer=("bo", 7, DIALER[2]), acceptor=("balice", 9, ACCEPTOR[2])),
            mac(),
        )
        self.assertNotEqual(mac(members=("alicebob", "carol")), mac())
        self.assertNotEqual(mac(members=("alice", "bobcarol")), mac())


class LockedOutTests(SynchronousTestCase):
    """
    L{locked_out_sentence}: a member most of its group refused for a
    reason no retry can change.
    """

    def test_majority(self) -> None:
        """
        For groups of 1 to 9, fewer than M{n // 2 + 1} refusing peers say
        nothing, and that many or more say the member is locked out; a pair
        never locks out either member.
        """
        for n in range(1, 10):
            members = tuple(f"m{i}" for i in range(n))
            for k in range(n):
                refusing = [
                    (f"m{i}", (REFUSED_GROUP, "wrong group")) for i in range(1, k + 1)
                ]
                sentence = locked_out_sentence("m0", members, refusing)
                if k < n // 2 + 1:
                    self.assertIsNone(sentence, (n, k))
                else:
                    assert sentence is not None
                    self.assertTrue(
                        sentence.startswith("member 'm0' can never be let in:"),
                        sentence,
                    )
                    self.assertIn(f" of its {n - 1} peers refused it", sentence)

    def test_group(self) -> None:
        """
        Refused for its group, a member is told who refused it, the first
        reason, and to use the other members' group.
        """
        self.assertEqual(
            locked_out_sentence(
                "alice",
                CONFIGURED,
                [
                    ("bob", (REFUSED_GROUP, "group 'x' is not 'chat'")),
                    ("carol", (REFUSED_GROUP, "group 'x' is not 'chat'")),
                ],
            ),
            "member 'alice' can never be let in: bob, carol of its 2 peers refused"
            " it (bob: group 'x' is not 'chat'); start it with the --group of the"
            " other members",
        )

    def test_secret(self) -> None:
        """
        Refused for its secret, a member is told to use the others' secret.
        """
        sentence = locked_out_sentence(
            "alice",
            MEMBERS,
            [
                ("bob", (REFUSED_SECRET, "failed the group secret check")),
                ("carol", (REFUSED_SECRET, "failed the group secret check")),
            ],
        )
        self.assertEqual(
            sentence,
            "member 'alice' can never be let in: bob, carol of its 2 peers refused"
            " it (bob: failed the group secret check); give it the same"
            " --secret-file as the other members",
        )

    def test_both(self) -> None:
        """
        Refused for both, a member is given both pieces of advice.
        """
        sentence = locked_out_sentence(
            "alice",
            MEMBERS,
            [
                ("bob", (REFUSED_SECRET, "secret")),
                ("carol", (REFUSED_GROUP, "group")),
            ],
        )
        assert sentence is not None
        self.assertTrue(
            sentence.endswith(
                "(bob: secret); start it with the --group of the other members and"
                " give it the same --secret-file as the other members"
            ),
            sentence,
        )


# An AMP client's first box, as Twisted's AMP sends it.
FIRST_BOX = {b"_ask": b"1", b"_command": b"Status"}


class AmpTests(SynchronousTestCase):
    """
    L{looks_like_amp}, L{amp_tag} and L{amp_box}: a client of the client API
    that dialed a peer port.
    """

    def test_box_bytes(self) -> None:
        """
        A box is each key and value with its 2-byte length, and an empty key
        to end it.
        """
        self.assertEqual(
            amp_box(FIRST_BOX),
            b"\x00\x04_ask\x00\x011\x00\x08_command\x00\x06Status\x00\x00",
        )
        self.assertEqual(amp_box({}), b"\x00\x00")

    def test_round_trip(self) -> None:
        """
        A client's first box looks like AMP and its C{_ask} tag is found,
        wherever it is in the box.
        """
        box = amp_box(FIRST_BOX)
        self.assertTrue(looks_like_amp(box))
        self.assertEqual(amp_tag(box), b"1")
        later = amp_box({b"_command": b"Status", b"_ask": b"a7"})
        self.assertTrue(looks_like_amp(later))
        self.assertEqual(amp_tag(later), b"a7")

    def test_no_tag(self) -> None:
        """
        A box without C{_ask} (a command that wants no answer) has no tag.
        """
        self.assertIsNone(amp_tag(amp_box({b"_command": b"Status", b"x": b"y"})))
        self.assertIsNone(amp_tag(b""))

    def test_cut_tag(self) -> None:
        """
        A box cut before its C{_ask} value is whole has no tag yet; from the
        end of that value on, it has.
        """
        box = amp_box({b"_command": b"Status", b"_ask": b"a7"})
        whole = box.index(b"a7") + 2
        for cut in range(len(box) + 1):
            self.assertEqual(amp_tag(box[:cut]), b"a7" if cut >= whole else None, cut)

    def test_too_short(self) -> None:
        """
        Fewer than 3 bytes do not look like anything yet.
        """
        box = amp_box(FIRST_BOX)
        for cut in range(3):
            self.assertFalse(looks_like_amp(box[:cut]))
        self.assertTrue(looks_like_amp(box[:3]))

    def test_frames_are_not_amp(self) -> None:
        """
        No frame prefix a peer may send before the handshake completes (a
        length up to L{HANDSHAKE_MAX_FRAME}), whatever follows it, is taken
        for AMP.
        """
        self.assertEqual(HANDSHAKE_MAX_FRAME, 65536)
        pack = struct.Struct(">I").pack
        for length in range(HANDSHAKE_MAX_FRAME + 1):
            self.assertFalse(looks_like_amp(pack(length) + b"_ask"), length)

    def test_not_amp(self) -> None:
        """
        Bytes that do not start with a key's length below 256 and an
        underscore are not AMP.
        """
        self.assertFalse(looks_like_amp(b"\x00\x04ask\x00"))
        self.assertFalse(looks_like_amp(b"\x01\x04_ask"))
        self.assertFalse(looks_like_amp(b"\x00\x00_ask"))
        self.assertFalse(looks_like_amp(b"GET / HTTP/1.1\r\n"))

    @settings(max_examples=100, deadline=None)
    @given(
        st.dictionaries(
            st.binary(min_size=1, max_size=20).filter(lambda key: key != b"_ask"),
            st.binary(max_size=40),
            max_size=5,
        ),
        st.one_of(st.none(), st.binary(max_size=40)),
        st.integers(0, 5),
    )
    def test_any_box(
        self, fields: dict[bytes, bytes], tag: bytes | None, where: int
    ) -> None:
        """
        In any box, the C{_ask} tag is found if there is one, wherever it is,
        and only then; a box that starts with an underscore key looks like
        AMP.
        """
        items = list(fields.items())
        if tag is not None:
            items.insert(min(where, len(items)), (b"_ask", tag))
        box = amp_box(dict(items))
        self.assertEqual(amp_tag(box), tag)
        if items:
            self.assertEqual(looks_like_amp(box), items[0][0].startswith(b"_"))
