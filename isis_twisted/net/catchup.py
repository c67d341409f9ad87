"""
Catching up, on the reactor's side: a member added to a view gets what its
handlers lack (records by replay, then its state handlers' state by
snapshot) before it hands out anything of the view, and a member gives
both to the members that ask.

The rules are pure and live beside: L{isis_twisted.core.transfer} (which
records to give, whom to ask) and L{isis_twisted.core.snapshots} (snapshots in
chunks, whom to ask).  L{CatchUp} is their wiring to one L{MulticastNode}:
it reads the node's handlers, pump and history, sends on its links and
hands out through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from isis_twisted.core.engine import Record, StreamPosition
from isis_twisted.core.pump import describe
from isis_twisted.core.snapshots import (
    SNAPSHOT_CHUNK,
    FetchingState,
    SnapshotGiving,
    state_handlers,
)
from isis_twisted.core.transfer import CatchingUp, Giving, give
from isis_twisted.core.views import (
    Fetch,
    FetchState,
    NoRecords,
    NoState,
    Records,
    StateChunk,
    View,
)

if TYPE_CHECKING:
    from isis_twisted.net.node import MulticastNode

GIVE_CHUNKS_PER_TURN = 2
"""
How many chunks of records a member gives a member catching up per reactor
turn, at most.
"""


class CatchUp:
    """
    One member's catching up, and what it gives others that catch up.

    @ivar node: The member.
    @ivar catching: While this member catches up on records, what it asked
        and of whom; L{None} before it is added to a view in this life.
    @ivar fetching_state: While it gets its state handlers' state, what it
        asked and of whom.
    @ivar behind: While it catches up, the records its new view delivered
        meanwhile, handed out once it holds what it lacked.
    @ivar caught_up: Records it was given by replay, in all.
    @ivar restored_bytes: Bytes of snapshots it restored, in all.
    @ivar cannot_catch_up: Why it could not catch up, once it could not.
    """

    _log = Logger()

    def __init__(self, node: MulticastNode) -> None:
        self.node = node
        self.catching: CatchingUp | None = None
        self.fetching_state: FetchingState | None = None
        self.behind: list[Record] | None = None
        self.caught_up = 0
        self.restored_bytes = 0
        self.cannot_catch_up: str | None = None
        # Per member catching up from this one: what is left to give it, and
        # the incarnation that asked.
        self._giving: dict[str, tuple[Giving | SnapshotGiving, int | None]] = {}
        self._give_call: dict[str, IDelayedCall] = {}

    @property
    def serving(self) -> frozenset[str]:
        """
        The members this member is giving records or a snapshot to now.
        """
        return frozenset(self._giving)

    def forget(self) -> None:
        """
        This member asks to be added again: what it caught up on before
        belongs to another join.
        """
        self.catching = None

    def give_more(self) -> None:
        """
        A link has room again: go on giving to every member waiting for it.
        """
        for peer in list(self._giving):
            if peer not in self._give_call:
                self._give(peer)

    def stop(self) -> None:
        """
        The member stops: give nothing more.
        """
        for call in self._give_call.values():
            if call.active():
                call.cancel()
        self._give_call.clear()

    def watch(self, view: View) -> None:
        """
        The member's view may have changed: a member it was asking that
        left the view will not answer, so ask another.
        """
        catching = self.catching
        if (
            self.behind is not None
            and catching is not None
            and catching.asking is not None
            and catching.asking not in view.members
        ):
            catching.refusals.append((str(catching.asking), "it left the group"))
            self._ask_next()
        fetching = self.fetching_state
        if (
            fetching is not None
            and fetching.asking is not None
            and fetching.asking not in view.members
        ):
            fetching.refused(fetching.asking, "it left the group")
            self._ask_state_next()

    def welcomed(self) -> None:
        """
        This member was added to a view: catch up before handing out
        anything of it, if its durable handlers lack records.
        """
        membership = self.node.membership
        assert membership.welcome is not None
        welcomer, welcome = membership.welcome
        resume = self.node.handout.resume_point()
        self._log.warn(
            "member {me!r} was added to view {view} of {members} by {by!r},"
            " starting at index {index}{behind}",
            me=self.node.me,
            view=welcome.latest.id,
            members=", ".join(welcome.latest.members),
            by=welcomer,
            index=welcome.first,
            behind=(
                f"; it catches up from index {resume.index + 1} first"
                if resume is not None
                else ""
            ),
        )
        others = [
            n for n in welcome.latest.members if n not in (self.node.me, welcomer)
        ]
        self.catching = CatchingUp(
            welcome,
            resume if resume is not None else StreamPosition(),
            [welcomer, *others],
        )
        fresh = not (self.node.handout.handed.index or self.node.handout.handed.view)
        states = state_handlers(self.node.handlers)
        self.fetching_state = (
            FetchingState(welcome.latest.id, len(states), [welcomer, *others])
            if fresh and states and welcome.first > 1
            else None
        )
        if resume is None:
            if self.fetching_state is not None:
                self.behind = []
                self._ask_state_next()
            return
        if fresh:
            # Started afresh: handlers that keep nothing of their own begin
            # with the view it was added to, as a new member's do.
            self.node.pump.start_after(
                StreamPosition(welcome.first - 1, welcome.latest.id - 1)
            )
        self.behind = []
        self._ask_next()

    def _ask_next(self) -> None:
        catching = self.catching
        assert catching is not None
        self._ask(catching)

    def _ask(
        self, asking: CatchingUp | FetchingState, advice: str | None = None
    ) -> None:
        """
        Ask the next member C{asking} has left for records or state; when
        none is left, this member cannot catch up.
        """
        while (nxt := asking.next_fetch()) is not None:
            name, request = nxt
            link = self.node.links.get(name)
            if link is not None:
                link.send_control(request)
                return
            asking.refusals.append((name, "no link to it"))
        self.cannot_catch_up_because(asking.why_not(), advice)

    def _caught_up(self) -> None:
        catching = self.catching
        assert catching is not None
        self._log.info(
            "member {me!r} caught up: {count} records from {giver!r}",
            me=self.node.me,
            count=catching.got,
            giver=catching.asking,
        )
        # Done with records: nobody is asked for them any more.
        catching.asking = None
        if self.fetching_state is not None:
            self._ask_state_next()
        else:
            self._done()

    def _done(self) -> None:
        """
        Every handler holds what it lacked: what the view it was added to
        delivered meanwhile is handed out now.
        """
        behind, self.behind = self.behind, None
        if behind:
            self.node.handout.hand_out(behind)

    def cannot_catch_up_because(self, why: str, advice: str | None = None) -> None:
        """
        Nobody can give what this member lacks: it leaves the group and
        says so, once.
        """
        self.cannot_catch_up = why
        self.behind = None
        self.fetching_state = None
        membership = self.node.membership
        membership.leave()
        membership.stop(f"it cannot catch up: {why}")
        self._log.error(
            "member {me!r} cannot rejoin: {why}. {advice}",
            me=self.node.me,
            why=why,
            advice=advice
            or (
                "Start it with a handler file that is a prefix of the group's (or"
                " an empty one), or raise --retain on the other members so that"
                " they keep what it lacks"
            ),
        )
        self.node.schedule_turn()
        if self.node.on_fatal is not None:
            self.node.on_fatal(why)

    def transfer(self, peer: str, message: Fetch | Records | NoRecords) -> None:
        """
        A message of catching up: give, take, or ask someone else.
        """
        if isinstance(message, Fetch):
            answer = give(
                self.node.me,
                message,
                self.node.history.kept(),
                self.node.engine.delivered,
            )
            if isinstance(answer, NoRecords):
                self.node.links[peer].send_control(answer)
            else:
                self._giving[peer] = (answer, self.node.links[peer].incarnation)
                self._give(peer)
            return
        catching = self.catching
        if (
            catching is None
            or peer != catching.asking
            or self.behind is None
            or message.view != catching.welcome.latest.id
        ):
            # An answer to another request: another view's, or before a
            # restart.
            return
        if isinstance(message, NoRecords):
            catching.refusals.append((peer, message.reason))
            self._ask_next()
            return
        records = list(message.records)
        if records:
            self.node.handout.hand_out(records, replayed=True)
            catching.took(records)
            self.caught_up += len(records)
        if message.done:
            self._caught_up()
            self.node.schedule_turn()

    def _give(self, peer: str) -> None:
        """
        Send the joiner C{peer} what it lacks, as fast as its link takes it.
        """
        self._give_call.pop(peer, None)
        if peer not in self._giving:
            return
        giving, asked_by = self._giving[peer]
        link = self.node.links[peer]
        if link.incarnation != asked_by:
            # It restarted since it asked: that process is gone.
            del self._giving[peer]
            return
        # A few chunks a turn, then the reactor's other work: the group's
        # own traffic goes on while a member catches up.
        for _ in range(GIVE_CHUNKS_PER_TURN):
            if link.full:
                return
            try:
                chunk = giving.next_chunk(
                    min(
                        self.node.max_frame // 4,
                        SNAPSHOT_CHUNK
                        if isinstance(giving, SnapshotGiving)
                        else 1 << 20,
                    )
                )
            except Exception as e:
                # Only a state handler's snapshot can raise: the joiner asks
                # another member.
                del self._giving[peer]
                self._snapshot_failed(peer, giving.view, e)
                return
            if chunk is None:
                del self._giving[peer]
                return
            link.send_control(chunk)
            if chunk.done:
                del self._giving[peer]
                return
        if not self.node.stopped:
            self._give_call[peer] = self.node.clock.callLater(0, self._give, peer)

    def _ask_state_next(self) -> None:
        fetching = self.fetching_state
        assert fetching is not None
        self._ask(
            fetching,
            "Start it once another member of its view runs the same state"
            " handlers and is up to date",
        )

    def state_transfer(
        self, peer: str, message: FetchState | StateChunk | NoState
    ) -> None:
        """
        A message of state transfer: give a snapshot, take one, or ask
        someone else.
        """
        if isinstance(message, FetchState):
            self._give_state(peer, message)
            return
        fetching = self.fetching_state
        if fetching is None or peer != fetching.asking or message.view != fetching.view:
            return
        if isinstance(message, NoState):
            fetching.refused(peer, message.reason)
            self._ask_state_next()
            return
        handlers = state_handlers(self.node.handlers)
        if message.part >= len(handlers):
            fetching.refused(
                peer,
                f"it sent the state of handler {message.part + 1}; this member runs"
                f" {len(handlers)}",
            )
            self._ask_state_next()
            return
        try:
            if not fetching.started:
                fetching.started = True
                for handler in handlers:
                    handler.begin_restore()
            if message.data:
                handlers[message.part].restore_chunk(message.data)
            fetching.received += len(message.data)
            if message.done:
                for handler in handlers:
                    handler.end_restore()
        except Exception as e:
            self._log.failure(
                "member {me!r}: a state handler failed to restore a snapshot",
                failure=Failure(e),  # type: ignore[no-untyped-call]
                me=self.node.me,
            )
            self.cannot_catch_up_because(
                f"a state handler could not restore the snapshot: {describe(e)}",
                "Fix the handler's restore and start it again",
            )
            self.node.schedule_turn()
            return
        if not message.done:
            return
        for handler in handlers:
            # The snapshot holds everything up to where it was taken.
            self.node.pump.skip_through(handler, message.position)
        self.restored_bytes += fetching.received
        self.fetching_state = None
        self._log.info(
            "member {me!r} restored the state of {count} handler(s) from {giver!r}:"
            " {size} bytes, as of index {index}",
            me=self.node.me,
            count=len(handlers),
            giver=peer,
            size=fetching.received,
            index=message.position.index,
        )
        self._done()
        self.node.schedule_turn()

    def _snapshot_failed(self, peer: str, view: int, error: Exception) -> None:
        """
        A state handler's snapshot raised, when taken or half-way through:
        log it with its traceback and tell the joiner, which asks another
        member.
        """
        self._log.failure(
            "member {me!r} could not give its state to {peer!r}",
            failure=Failure(error),  # type: ignore[no-untyped-call]
            me=self.node.me,
            peer=peer,
        )
        self.node.links[peer].send_control(
            NoState(
                view, f"{self.node.me!r} could not take a snapshot: {describe(error)}"
            )
        )

    def _give_state(self, peer: str, fetch: FetchState) -> None:
        """
        A member added to view C{fetch.view} asks for its state handlers'
        state: snapshot them now, if this member can, and give it.
        """
        link = self.node.links[peer]
        handlers = state_handlers(self.node.handlers)
        reason: str | None = None
        if len(handlers) != fetch.parts:
            reason = (
                f"{self.node.me!r} runs {len(handlers)} state handler(s) and the joiner"
                f" {fetch.parts}: start every member with the same handlers"
            )
        elif self.behind is not None or self.fetching_state is not None:
            reason = f"{self.node.me!r} is catching up itself"
        elif self.node.pump.pending:
            reason = f"{self.node.me!r} holds records its own handlers have not taken"
        elif self.node.handout.handed.view < fetch.view:
            reason = (
                f"{self.node.me!r} has not handed out view {fetch.view}'s start yet"
            )
        if reason is not None:
            link.send_control(NoState(fetch.view, reason))
            return
        try:
            parts = [handler.take_snapshot() for handler in handlers]
        except Exception as e:
            self._snapshot_failed(peer, fetch.view, e)
            return
        self._log.info(
            "member {me!r} gives its state to {peer!r}, as of index {index}",
            me=self.node.me,
            peer=peer,
            index=self.node.handout.handed.index,
        )
        self._giving[peer] = (
            SnapshotGiving(fetch.view, self.node.handout.handed, parts),
            link.incarnation,
        )
        self._give(peer)
