"""
Deterministic simulation of a group whose membership changes: every
member's L{Membership} (engine included) over simulated links and time,
with crashes, restarts, partitions that heal, and false suspicions, all
drawn from one seed so that any schedule can be replayed exactly.

Links are FIFO and, while the two ends are not cut apart, reliable (the
link layer's promise): a partition holds frames back until it heals.  A
crashed member never acts again; frames in flight to it are lost and of
those in flight from it only a prefix arrives.  Each member's failure
detector suspects a member it cannot hear (crashed, or across a
partition) after C{suspect_after} simulated seconds, trusts it again once it
can, and now and then suspects a live one for no reason.

A crashed member may restart as a new incarnation with its history (a
durable handler's): it asks to join, the members it can reach suspect its
old incarnation at once (its links would say it restarted), and once
welcomed it catches up with the records it lacks as the node does: it
sends a FETCH over its simulated link to the member that welcomed it,
which answers with L{isis_twisted.core.transfer.give} from its own history in
RECORDS chunks over the link (a crash of either end, or of the giver half
way, cuts the transfer like any other traffic); a joiner whose giver
refuses or leaves the view asks the next member, and what its new view
delivers meanwhile waits until it caught up.

A group may also be joined by newcomers, members it was not started with
(C{--join}): each starts with nothing, asks the founding members as a node
does once its discovery answered, and is added and catches up the same
way; it may crash and restart too, half-way or after.

Run one seeded scenario, or many::

    python -m isis_twisted.tools.group_simulation --seed 7 --show
    python -m isis_twisted.tools.group_simulation --seeds 100000
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from isis_twisted.core.engine import (
    Delivery,
    Engine,
    Frame,
    ProtocolError,
    Record,
    StreamPosition,
    ViewChange,
)
from isis_twisted.core.membership import JOINING, REMOVED, Membership
from isis_twisted.core.transfer import CatchingUp, Giving, give
from isis_twisted.core.viewcheck import ViewMulticast, check_views
from isis_twisted.core.views import Control, Fetch, NoRecords, Records, View

MembershipFactory = Callable[[str, Sequence[str]], Membership]
"""
Makes one member's state machine: C{factory(me, members)}.
"""

Giver = Callable[[str, Fetch, Sequence[Record], int], Giving | NoRecords]
"""
What a member answers a FETCH with: C{giver(me, fetch, kept, delivered)},
as L{isis_twisted.core.transfer.give}.
"""

CHUNK_BYTES = 200
"""
The most payload bytes a RECORDS chunk carries here: small, so that a
transfer takes several chunks and a crash can cut it half-way.
"""

NAMES = ("a", "b", "c", "d", "e", "f", "g")

FLUSH_TIMEOUT = 1.0
SUSPECT_AFTER = 0.5
MAX_DELAY = 0.1
"""
The longest a frame takes on a link that is not cut, in simulated seconds.
"""


def default_membership(me: str, members: Sequence[str]) -> Membership:
    """
    The membership machine the simulation runs unless told otherwise.
    """
    return Membership(me, members, Engine, FLUSH_TIMEOUT)


@attrs.frozen
class Sent:
    """
    A multicast as the simulation saw it: the message and its view.
    """

    sender: str
    clock: int
    payload: bytes
    view: int
    after: int


@attrs.frozen
class Problem:
    """
    One thing a run got wrong.
    """

    what: str
    member: str | None
    detail: str

    def __str__(self) -> str:
        where = f" at {self.member}" if self.member else ""
        return f"{self.what}{where}: {self.detail}"


class GroupSimulation:
    """
    A group of L{Membership} machines over simulated links and time.

    @ivar members: Every member's machine, by name.
    @ivar histories: Every member's delivery stream, view changes included.
    @ivar sent: Every multicast, in the order made.
    @ivar crashed: The members that crashed.
    @ivar now: The simulated time.
    """

    def __init__(
        self,
        names: Sequence[str],
        rng: random.Random,
        factory: MembershipFactory = default_membership,
        suspect_after: float = SUSPECT_AFTER,
        giver: Giver = give,
        newcomers: Sequence[str] = (),
    ) -> None:
        """
        @param names: The founding members.
        @param newcomers: Members that may join the running group (not
            started until L{add}).
        """
        self.rng = rng
        self._giver = giver
        # Per member catching up: what it asked of whom, and what its new
        # view delivered meanwhile.
        self._catching: dict[str, CatchingUp] = {}
        self._behind: dict[str, list[Record]] = {}
        self.caught_up = 0
        self.cannot_catch_up: dict[str, str] = {}
        self.founders = tuple(names)
        self.names = (*names, *newcomers)
        names = self.names
        self._factory = factory
        self.members = {m: factory(m, self.founders) for m in self.founders}
        for m in newcomers:
            self.members[m] = factory(m, (m,))
        self.waiting = set(newcomers)
        self.added = 0
        self.restarts = 0
        self._caught_up: set[int] = set()
        # Per member, its incarnation; per (receiver, sender), the one the
        # receiver's link takes frames from.
        self.incarnation = dict.fromkeys(self.names, 0)
        self._taken = {(d, s): 0 for s in self.names for d in self.names if s != d}
        self.histories: dict[str, list[Record]] = {m: [] for m in names}
        self.sent: list[Sent] = []
        self.crashed: set[str] = set()
        self.now = 0.0
        self.suspect_after = suspect_after
        self.frames = 0
        self._links: dict[tuple[str, str], deque[tuple[float, Frame | Control]]] = {
            (s, d): deque() for s in names for d in names if s != d
        }
        self._sides: list[set[str]] | None = None
        self._unheard_since: dict[tuple[str, str], float] = {}

    # -- the network --------------------------------------------------------

    def reachable(self, src: str, dst: str) -> bool:
        """
        Whether frames from C{src} can get to C{dst} now.
        """
        if {src, dst} & (self.crashed | self.waiting):
            return False
        if self._sides is None:
            return True
        return any(src in side and dst in side for side in self._sides)

    def hears(self, name: str, other: str) -> bool:
        """
        Whether C{name}'s failure detector hears from C{other}: it can reach
        C{name} and still counts it a member of its view.
        """
        sender = self.members[other]
        return (
            self.reachable(other, name)
            and sender.state not in (REMOVED, JOINING)
            and name in sender.view.members
            and self._taken[(name, other)] == self.incarnation[other]
        )

    def partition(self, sides: list[set[str]]) -> None:
        """
        Cut the group into C{sides}: frames between them wait.
        """
        self._sides = sides

    def heal(self) -> None:
        """
        Join the sides again; the frames they held go on.
        """
        self._sides = None

    def crash(self, name: str) -> None:
        """
        Crash C{name}.
        """
        self.crashed.add(name)
        # What it had not handed out yet is lost with the process.
        self._catching.pop(name, None)
        self._behind.pop(name, None)
        for (src, dst), frames in self._links.items():
            if dst == name:
                frames.clear()
            elif src == name:
                keep = self.rng.randint(0, len(frames))
                while len(frames) > keep:
                    frames.pop()

    def restart(self, name: str) -> None:
        """
        Start crashed member C{name} again as a new incarnation that keeps
        its history and asks to join.
        """
        self.crashed.discard(name)
        self.restarts += 1
        self.incarnation[name] += 1
        for (src, dst), frames in self._links.items():
            if name in (src, dst):
                frames.clear()
        self._catching.pop(name, None)
        self._behind.pop(name, None)
        self._fresh(name)
        for other in self.live():
            peer = self.members[other]
            if (
                other != name
                and self.reachable(name, other)
                and name in peer.view.members
                and peer.state != REMOVED
            ):
                # Its new incarnation's handshake tells the peer the old one
                # is gone.
                peer.suspect(name, now=self.now)
                self._collect(other)

    def _fresh(self, name: str) -> Membership:
        """
        A new incarnation of C{name}, asking to join: a founding member
        asks the view it knows, a newcomer the founding members (as a node
        does once its discovery answered).
        """
        if name in self.founders:
            member = self._factory(name, self.founders)
            member.incarnation = self.incarnation[name]
            self.members[name] = member
            member.join(self.now)
            return member
        member = self._factory(name, (name,))
        member.incarnation = self.incarnation[name]
        self.members[name] = member
        asking = tuple(sorted({*self.founders, name}))
        member.join(self.now, View(0, asking))
        return member

    def add(self, name: str) -> None:
        """
        Start newcomer C{name}: it asks to join the running group.
        """
        self.waiting.discard(name)
        self.added += 1
        self._fresh(name)
        self._collect(name)

    def live(self) -> list[str]:
        """
        The members that have not crashed (newcomers once started).
        """
        return [m for m in self.names if m not in self.crashed | self.waiting]

    def busy_links(self) -> list[tuple[str, str]]:
        """
        The links with frames in flight that can move now.
        """
        return [
            k
            for k, q in self._links.items()
            if q and self.reachable(*k) and not self._refused(*k)
        ]

    def _refused(self, src: str, dst: str) -> bool:
        """
        Whether C{dst}'s link refuses C{src}'s new incarnation for now, as
        the node's does: while C{dst} still counts the old one a member of
        its view.  It suspects the old one, which ends that.
        """
        if self._taken[(dst, src)] == self.incarnation[src]:
            return False
        peer = self.members[dst]
        if (
            src in peer.view.members
            and peer.state not in (REMOVED, JOINING)
            and peer.joined_as.get(src) != self.incarnation[src]
        ):
            if src not in peer.suspects:
                peer.suspect(src, now=self.now)
                self._collect(dst)
            return True
        self._taken[(dst, src)] = self.incarnation[src]
        return False

    # -- members --------------------------------------------------------------

    def multicast(self, name: str, payload: bytes) -> bool:
        """
        Have C{name} multicast C{payload} if it can now.

        @return: Whether it did (a member closing its view waits).
        """
        member = self.members[name]
        if not member.delivering:
            return False
        after = member.engine.delivered
        clock, _ = member.multicast(payload)
        self.sent.append(Sent(name, clock, payload, member.view.id, after))
        self._collect(name)
        return True

    def end_turn(self, name: str) -> None:
        """
        End C{name}'s turn: put its frames and control messages on its links.
        """
        member = self.members[name]
        for frame in member.flush():
            for peer in member.peers:
                self._put(name, peer, frame)
        for dst, message in member.take_control():
            self._put(name, dst, message)
        self._collect(name)

    def _put(self, src: str, dst: str, item: Frame | Control) -> None:
        if dst not in self.crashed and dst not in self.waiting:
            self._links[(src, dst)].append((self.now, item))
            self.frames += 1

    def transmit(self, src: str, dst: str) -> None:
        """
        Hand the oldest frame on the link from C{src} to C{dst} to C{dst}.
        """
        _, item = self._links[(src, dst)].popleft()
        member = self.members[dst]
        if isinstance(item, Fetch):
            self._give(dst, src, item)
        elif isinstance(item, Records | NoRecords):
            self._records_arrived(dst, src, item)
        elif isinstance(item, Frame):
            try:
                member.receive_data(src, item, self.now)
            except ProtocolError as e:
                # The link layer drops such a connection; in the simulation
                # it can only be a bug.
                raise AssertionError(f"{dst} refused a frame from {src}: {e}") from e
        else:
            member.receive_control(src, item, self.now)
        self._collect(dst)

    def turns_due(self) -> list[str]:
        """
        The live members with frames or control messages to send.
        """
        return [m for m in self.live() if self.members[m].has_output]

    def _collect(self, name: str) -> None:
        member = self.members[name]
        records = member.take_deliveries()
        if member.welcome is not None and id(member) not in self._caught_up:
            self._caught_up.add(id(member))
            self._start_catching_up(name)
        behind = self._behind.get(name)
        if behind is None:
            self.histories[name].extend(records)
            return
        behind.extend(records)
        catching = self._catching[name]
        if catching.asking is not None and catching.asking not in member.view.members:
            # The giver left the view: it will not answer.
            catching.refusals.append((catching.asking, "it left the group"))
            self._ask_next(name)

    def _start_catching_up(self, name: str) -> None:
        """
        C{name} was added to a view: ask for every record after the last
        it holds and before that view, before it hands out anything more.
        """
        member = self.members[name]
        assert member.welcome is not None
        welcomer, welcome = member.welcome
        others = [n for n in welcome.latest.members if n not in (name, welcomer)]
        after = StreamPosition().advanced(self.histories[name])
        self._catching[name] = CatchingUp(welcome, after, [welcomer, *others])
        self._behind[name] = []
        self._ask_next(name)

    def _ask_next(self, name: str) -> None:
        catching = self._catching[name]
        nxt = catching.next_fetch()
        if nxt is None:
            # As the node does: it leaves, and delivers nothing more.
            why = catching.why_not()
            self.cannot_catch_up[name] = why
            del self._catching[name]
            del self._behind[name]
            member = self.members[name]
            member.leave()
            member.stop(f"it cannot catch up: {why}")
            return
        giver, fetch = nxt
        self._put(name, giver, fetch)

    def _give(self, me: str, joiner: str, fetch: Fetch) -> None:
        """
        Answer C{joiner}'s FETCH from what C{me} handed out, in chunks.
        """
        answer = self._giver(
            me, fetch, self.histories[me], self.members[me].engine.delivered
        )
        if isinstance(answer, NoRecords):
            self._put(me, joiner, answer)
            return
        while (chunk := answer.next_chunk(CHUNK_BYTES)) is not None:
            self._put(me, joiner, chunk)
            if chunk.done:
                break

    def _records_arrived(
        self, name: str, giver: str, message: Records | NoRecords
    ) -> None:
        catching = self._catching.get(name)
        if (
            catching is None
            or giver != catching.asking
            or message.view != catching.welcome.latest.id
        ):
            return
        if isinstance(message, NoRecords):
            catching.refusals.append((giver, message.reason))
            self._ask_next(name)
            return
        self.histories[name].extend(message.records)
        catching.took(message.records)
        self.caught_up += len(message.records)
        if message.done:
            del self._catching[name]
            self.histories[name].extend(self._behind.pop(name))

    def advance(self, dt: float, false_suspicion: float = 0.0) -> None:
        """
        Let C{dt} seconds pass: failure detectors and deadlines act.

        Links that are not cut deliver every frame within L{MAX_DELAY}: time
        does not pass a frame's due time before it arrives (a network that
        is, once healed, timely enough for timeouts to mean something).
        """
        target = self.now + dt
        while True:
            due = [
                (frames[0][0], link)
                for link, frames in self._links.items()
                if frames and self.reachable(*link) and not self._refused(*link)
            ]
            if not due:
                break
            sent, link = min(due)
            if sent + MAX_DELAY > target:
                break
            self.now = max(self.now, sent + MAX_DELAY)
            self.transmit(*link)
        self.now = target
        for name in self.live():
            member = self.members[name]
            if member.state in (REMOVED, JOINING):
                if member.deadline is not None and member.deadline <= self.now:
                    member.tick(self.now)
                    self._collect(name)
                continue
            back = []
            silent = []
            for other in member.view.members:
                if other == name:
                    continue
                key = (name, other)
                if self.hears(name, other):
                    self._unheard_since.pop(key, None)
                    if other in member.suspects:
                        back.append(other)
                    elif self.rng.random() < false_suspicion:
                        silent.append(other)
                else:
                    since = self._unheard_since.setdefault(key, self.now)
                    if self.now - since >= self.suspect_after:
                        silent.append(other)
            if silent:
                member.suspect(*silent, now=self.now)
            if back:
                member.trust(*back, now=self.now)
            deadline = member.deadline
            if deadline is not None and deadline <= self.now:
                member.tick(self.now)
            self._collect(name)

    # -- a run --------------------------------------------------------------------

    def run(
        self,
        plan: Sequence[tuple[str, bytes]],
        crashes: int = 0,
        partitions: int = 0,
        false_suspicion: float = 0.0,
        max_steps: int = 200_000,
        restarts: int = 0,
    ) -> bool:
        """
        Play C{plan} under a random schedule with faults, then let the
        group settle.

        @return: Whether it settled (every live member that is still in the
            group has sent its whole share of the plan, nothing is in
            flight, and none is closing a view) within C{max_steps}.
        """
        rng = self.rng
        queues: dict[str, deque[bytes]] = {m: deque() for m in self.names}
        for name, payload in plan:
            queues[name].append(payload)
        weights = [rng.uniform(0.2, 1.0) for _ in range(4)]
        fault_weight = rng.uniform(0.002, 0.02)
        crashes = min(crashes, len(self.founders) - 1)
        faults_left = crashes + partitions + restarts + len(self.waiting)
        healing_at: float | None = None
        for _ in range(max_steps):
            if healing_at is not None and self.now >= healing_at:
                self.heal()
                healing_at = None
            senders = [
                m for m in self.live() if queues[m] and self.members[m].delivering
            ]
            due = self.turns_due()
            links = self.busy_links()
            faulting = faults_left > 0 and healing_at is None
            quiet = not (due or links)
            if quiet and not senders and not faulting and self._settled(queues):
                return True
            if (
                quiet
                and not faulting
                and healing_at is None
                and not self.can_progress()
            ):
                # What is left cannot go on without a majority, and nothing
                # is in flight: stop.
                return False
            choices = [0, 1, 2, 3] + ([4] if faulting else [])
            ws = [
                weights[0] if senders else 0.0,
                weights[1] if due else 0.0,
                weights[2] if links else 0.0,
                weights[3] * 0.2,
            ] + ([fault_weight] if faulting else [])
            action = rng.choices(choices, ws)[0]
            if action == 0:
                name = rng.choice(senders)
                for _ in range(rng.randint(1, 4)):
                    if queues[name] and self.multicast(name, queues[name][0]):
                        queues[name].popleft()
            elif action == 1:
                self.end_turn(rng.choice(due))
            elif action == 2:
                self.transmit(*rng.choice(links))
            elif action == 3:
                self.advance(rng.uniform(0.01, 0.3), false_suspicion)
            else:
                faults_left -= 1
                live = self.live()
                if self.waiting and rng.random() < 0.5:
                    self.add(min(self.waiting))
                elif self.crashed and self.restarts < restarts and rng.random() < 0.5:
                    self.restart(rng.choice(sorted(self.crashed)))
                elif len(self.crashed) < crashes and (
                    rng.random() < 0.5 or faults_left < crashes - len(self.crashed)
                ):
                    # Half the time, crash a member in the middle of
                    # running a view change: the coordinator crashes the
                    # flush must survive, at every step.
                    running = [m for m in live if self.members[m].ballot_running]
                    pool = running if running and rng.random() < 0.5 else live
                    self.crash(rng.choice(pool))
                elif len(live) > 1:
                    rng.shuffle(live)
                    cut = rng.randint(1, len(live) - 1)
                    sides = [set(live[:cut]), set(live[cut:])]
                    if len(live) > 3 and rng.random() < 0.3:
                        third = rng.randint(cut, len(live) - 1)
                        sides = [
                            set(live[:cut]),
                            set(live[cut:third]),
                            set(live[third:]),
                        ]
                    self.partition([s for s in sides if s])
                    healing_at = self.now + rng.uniform(0.2, 5.0)
        return False

    def _settled(self, queues: dict[str, deque[bytes]]) -> bool:
        for name in self.live():
            member = self.members[name]
            if member.state == REMOVED:
                continue
            if name in self._behind:
                return False
            if queues[name] or not member.delivering or member.suspects:
                return False
            if member.engine.queue_length or member.deadline is not None:
                return False
            if not all(
                self.hears(name, other)
                for other in member.view.members
                if other != name
            ):
                return False
        return True

    # -- checking ---------------------------------------------------------------

    def problems(self, settled: bool) -> list[Problem]:
        """
        Everything the run got wrong: the view checker over every member's
        history (with liveness if the run settled), and every history a
        prefix of what the members still in the group delivered or hold.
        """
        out: list[Problem] = []
        # A member still asking to join at the end is in no view: it is
        # judged like one that departed.
        final = [
            m for m in self.live() if self.members[m].state not in (REMOVED, JOINING)
        ]
        departed = set(self.names) - set(final)
        result = check_views(
            self.histories,
            [
                ViewMulticast(s.sender, s.clock, s.payload, s.view, s.after)
                for s in self.sent
            ],
            initial=self.founders,
            departed=departed,
            liveness=settled,
        )
        out.extend(Problem(v.guarantee, v.node, v.detail) for v in result.violations)
        # The checker judges a departed member against those that went on
        # to a later view; a group left without a majority goes on to none,
        # so judge every history against what its members hold as well.
        # What a member holds is only its future while no view it has not
        # installed was decided: judge by the futures of the members in the
        # newest view anyone installed, or else by deliveries alone.
        newest = max(m.view.id for m in self.members.values())
        current = [m for m in final if self.members[m].view.id == newest]
        reference = max(
            [self._future(m) for m in current]
            + [list(self.histories[m]) for m in self.names],
            key=lambda h: sum(isinstance(r, Delivery) for r in h),
        )
        ref = [_key(r) for r in reference if isinstance(r, Delivery)]
        for name in self.names:
            mine = [_key(r) for r in self.histories[name] if isinstance(r, Delivery)]
            # By index: a member added back may hold nothing before the view
            # it was added to.
            at = next(
                (
                    i
                    for i, k in enumerate(mine)
                    if int(str(k[0])) - 1 >= len(ref) or ref[int(str(k[0])) - 1] != k
                ),
                None,
            )
            if at is not None:
                out.append(
                    Problem(
                        "prefix",
                        name,
                        f"delivery {at + 1} is {_show_key(mine, at)},"
                        f" the longest history has {_show_key(ref, at)}",
                    )
                )
        if not settled and self.can_progress():
            out.append(Problem("liveness", None, "the group did not settle"))
        return out

    def can_progress(self) -> bool:
        """
        Whether the members still in the group hold a majority of a view
        one of them is in: only then must the group go on.
        """
        # A member asking to join votes in no view yet.
        final = [
            m for m in self.live() if self.members[m].state not in (REMOVED, JOINING)
        ]
        for name in final:
            view = self.members[name].view
            if view.majority(frozenset(final)):
                return True
        return False

    def _future(self, name: str) -> list[Record]:
        """
        C{name}'s deliveries, then the messages it holds in timestamp order:
        what it would deliver if its view closed now.
        """
        history = list(self.histories[name])
        member = self.members[name]
        if member.state == REMOVED:
            return history
        index = member.engine.delivered
        for m in member.engine.undelivered():
            index += 1
            history.append(Delivery(index, m.sender, m.clock, m.payload))
        return history


def _key(rec: Record) -> tuple[object, ...]:
    """
    What must be the same of a record on every member (a delivery's
    C{after} is known to its sender only).
    """
    if isinstance(rec, ViewChange):
        return ("view", rec.view, rec.members, rec.index)
    return (rec.index, rec.sender, rec.clock, rec.payload)


def _show_key(keys: list[tuple[object, ...]], at: int) -> str:
    if at >= len(keys):
        return "nothing"
    index, sender, clock, _ = keys[at]
    return f"{sender}@{clock} (#{index})"


def _show(history: list[Record], at: int) -> str:
    if at >= len(history):
        return "nothing"
    rec = history[at]
    if isinstance(rec, ViewChange):
        return f"view {rec.view} {list(rec.members)}"
    return f"{rec.sender}@{rec.clock} (#{rec.index})"


@attrs.frozen
class GroupOutcome:
    """
    The result of one seeded scenario.
    """

    seed: int
    members: tuple[str, ...]
    sent: int
    views: int
    crashed: tuple[str, ...]
    removed: tuple[str, ...]
    restarts: int
    problems: tuple[Problem, ...]
    histories: dict[str, list[Record]] = attrs.field(repr=False)
    replay: str = ""
    caught_up: int = 0
    cannot_catch_up: tuple[str, ...] = ()
    joined: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """
        Whether nothing went wrong.
        """
        return not self.problems

    def describe(self) -> str:
        """
        What happened, and what went wrong, with the command that replays it.
        """
        lines = [
            f"seed {self.seed}: {len(self.members)} members, {self.sent} multicasts,"
            f" {self.views} view changes, crashed: {list(self.crashed)},"
            f" restarts: {self.restarts}, removed: {list(self.removed)},"
            f" caught up: {self.caught_up} records"
            + (f", joined: {list(self.joined)}" if self.joined else "")
            + (
                f", could not catch up: {list(self.cannot_catch_up)}"
                if self.cannot_catch_up
                else ""
            ),
        ]
        lines.extend(f"  {p}" for p in self.problems[:20])
        lines.append("OK" if self.ok else f"replay: {self.replay}")
        return "\n".join(lines)


def run_seed(
    seed: int,
    factory: MembershipFactory = default_membership,
    nodes: int | None = None,
    giver: Giver = give,
) -> GroupOutcome:
    """
    Run the scenario C{seed} describes: 2 to 7 members (unless C{nodes} is
    given), up to all but a majority crashing, partitions that heal, false
    suspicions, and a random workload.

    @param giver: How members answer a FETCH (a broken variant, for tests).
    """
    rng = random.Random(seed)
    n = nodes if nodes is not None else 2 + seed % 6
    names = NAMES[:n]
    # Drawn apart, so that a seed without newcomers is the schedule it was
    # before they were simulated.
    joining = random.Random(seed * 7919 + 1)
    count = joining.randint(1, 2) if n < len(NAMES) and seed % 3 == 2 else 0
    newcomers = NAMES[n : n + count]
    sim = GroupSimulation(names, rng, factory, giver=giver, newcomers=newcomers)
    plan_extra = [
        (joining.choice(newcomers), f"n{i}".encode()) for i in range(5 * count)
    ]
    plan = [
        (rng.choice(names), f"{i}".encode() + b"." * rng.randrange(8))
        for i in range(rng.randrange(5, 60))
    ]
    crashes = rng.randint(0, (n - 1) // 2 + (1 if rng.random() < 0.2 else 0))
    partitions = rng.randint(0, 2)
    false_suspicion = rng.choice([0.0, 0.0, 0.002, 0.02])
    restarts = rng.randint(0, crashes)
    plan += plan_extra
    settled = sim.run(plan, crashes, partitions, false_suspicion, restarts=restarts)
    problems = sim.problems(settled)
    return GroupOutcome(
        seed=seed,
        members=tuple(names),
        sent=len(sim.sent),
        views=max(m.view.id for m in sim.members.values()),
        crashed=tuple(sorted(sim.crashed)),
        restarts=sim.restarts,
        removed=tuple(sorted(m for m, s in sim.members.items() if s.state == REMOVED)),
        problems=tuple(problems),
        histories=sim.histories,
        caught_up=sim.caught_up,
        cannot_catch_up=tuple(sorted(sim.cannot_catch_up)),
        joined=tuple(
            m
            for m in newcomers
            if any(isinstance(r, ViewChange) for r in sim.histories[m])
        ),
        replay=f"python -m isis_twisted.tools.group_simulation --seed {seed}"
        + (f" --nodes {nodes}" if nodes is not None else ""),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run one seeded scenario (or C{--seeds N} of them) and print the verdict;
    exit 1 if any went wrong.
    """
    parser = argparse.ArgumentParser(
        prog="python -m isis_twisted.tools.group_simulation",
        description="Seeded, replayable simulations of a group whose membership"
        " changes.",
    )
    parser.add_argument("--seed", type=int, default=1, help="scenario seed")
    parser.add_argument("--seeds", type=int, help="run seeds 0 to N - 1 instead")
    parser.add_argument("--nodes", type=int, choices=range(2, 8), help="group size")
    parser.add_argument("--show", action="store_true", help="print every history")
    args = parser.parse_args(argv)
    if args.seeds is not None:
        bad = restarts = records = stranded = joined = 0
        for seed in range(args.seeds):
            outcome = run_seed(seed, nodes=args.nodes)
            restarts += outcome.restarts
            joined += len(outcome.joined)
            records += outcome.caught_up
            stranded += len(outcome.cannot_catch_up)
            if not outcome.ok:
                bad += 1
                print(outcome.describe())
        print(
            f"{args.seeds} schedules, {bad} failed; {restarts} restarts, {records}"
            f" records caught up by FETCH, {stranded} members that could not catch"
            f" up, {joined} newcomers added"
        )
        return 1 if bad else 0
    outcome = run_seed(args.seed, nodes=args.nodes)
    if args.show:
        for name, history in outcome.histories.items():
            print(name, " ".join(_show(history, i) for i in range(len(history))))
    print(outcome.describe())
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
