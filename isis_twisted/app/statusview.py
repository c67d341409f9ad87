"""
C{isis status}, and how C{isis} reads a node's status: L{read_status} is
the one place that knows the status's shape, L{waiting_for} says in a few
words what holds up delivery (C{isis send} says it too), L{status_lines}
is what C{isis status} prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from isis_twisted.api.client import ClientProtocol
from isis_twisted.app.clibase import (
    EXIT_OK,
    CommandOptions,
    Console,
    OptionTable,
    node_parameters,
)

__all__ = [
    "StatusOptions",
    "StatusView",
    "format_status",
    "read_status",
    "run_status",
    "status_lines",
    "waiting_for",
]


class StatusOptions(CommandOptions):
    """
    Options of C{isis status}.
    """

    synopsis = "[--json]"
    longdesc = (
        "Show the node's state, starting with what, if anything, holds up delivery"
        " (a member out of the group, no majority, a view change under way, or"
        " the members the oldest message waits for), then its view, suspects"
        " and view changes."
    )
    optFlags: ClassVar[OptionTable] = [["json", "j", "Print the status as JSON."]]
    optParameters: ClassVar[OptionTable] = node_parameters(default=False)


@attrs.frozen
class StatusView:
    """
    What C{isis} reads from a node's status.

    @ivar member: The member's name.
    @ivar waiting_for: The members the oldest undelivered message waits
        for.
    @ivar oldest_age: How many seconds that message has waited, if known.
    @ivar silent: The members not heard from for a while.
    @ivar disconnected: The peers with no connection either way (of the
        view's members, when the node reports its view).
    @ivar queue: How many messages wait to be delivered.
    @ivar view: The id of the member's view, if the node reports one.
    @ivar view_members: The view's members, in rank order.
    @ivar state: C{normal}, C{flushing}, C{blocked} or C{removed}, if the
        node reports it.
    @ivar removed_because: Why the member is out of the group, once it is.
    @ivar suspects: The members suspected, each with the seconds this
        member has suspected it, or L{None} for one only others suspect.
    @ivar view_changes: How many view changes the member has installed.
    @ivar last_view_change: How many seconds the last one took.
    @ivar stuck: The delivery handlers that cannot keep a record, longest
        stuck first: each handler, the record's index, why, and for how
        many seconds.
    """

    member: str
    waiting_for: list[str]
    oldest_age: float | None
    silent: list[str]
    disconnected: list[str]
    queue: int
    view: int | None = None
    view_members: list[str] = attrs.Factory(list)
    state: str | None = None
    removed_because: str | None = None
    suspects: dict[str, float | None] = attrs.Factory(dict)
    view_changes: int | None = None
    last_view_change: float | None = None
    stuck: list[tuple[str, int, str, float]] = attrs.Factory(list)


def _stuck_handlers(value: object) -> list[tuple[str, int, str, float]]:
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        if isinstance(item, Mapping):
            seconds = _seconds_or_none(item.get("stuck_s"))
            index = item.get("index")
            found.append(
                (
                    str(item.get("handler", "?")),
                    index if type(index) is int else 0,
                    str(item.get("reason", "")),
                    seconds if seconds is not None else 0.0,
                )
            )
    return found


def _names(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def read_status(status: Mapping[str, object]) -> StatusView:
    """
    Read what C{isis} needs from a node's status: the one place that knows
    the status's shape.
    """
    oldest = status.get("oldest_undelivered")
    waiting: list[str] = []
    age: float | None = None
    if isinstance(oldest, Mapping):
        waiting = _names(oldest.get("waiting_for"))
        found = oldest.get("age_s")
        age = float(found) if isinstance(found, int | float) else None
    peers = status.get("peers")
    disconnected = []
    if isinstance(peers, Mapping):
        disconnected = [
            str(name)
            for name, link in peers.items()
            if isinstance(link, Mapping)
            and not link.get("connected_out")
            and not link.get("connected_in")
        ]
    queue = status.get("queue")
    suspects: dict[str, float | None] = {}
    found_suspects = status.get("suspects")
    if isinstance(found_suspects, Mapping):
        for name, seconds in found_suspects.items():
            suspects[str(name)] = _seconds_or_none(seconds)
    view_members = _names(status.get("view_members"))
    if view_members:
        # A peer left out of the view holds nothing up, connected or not.
        disconnected = [name for name in disconnected if name in view_members]
    view = status.get("view")
    state = status.get("state")
    why = status.get("removed_because")
    changes = status.get("view_changes")
    return StatusView(
        member=str(status.get("member", "?")),
        waiting_for=waiting,
        oldest_age=age,
        silent=_names(status.get("silent_members")),
        disconnected=disconnected,
        queue=queue if isinstance(queue, int) else 0,
        view=view if type(view) is int else None,
        view_members=view_members,
        state=state if isinstance(state, str) else None,
        removed_because=why if isinstance(why, str) else None,
        suspects=suspects,
        view_changes=changes if type(changes) is int else None,
        last_view_change=_seconds_or_none(status.get("last_view_change_s")),
        stuck=_stuck_handlers(status.get("stuck_handlers")),
    )


def _seconds_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _suspected(view: StatusView) -> str:
    """
    The suspects, each with for how long: C{c for 1.2 s, d (by others)}.
    """
    return ", ".join(
        f"{name} for {seconds:g} s" if seconds is not None else f"{name} (by others)"
        for name, seconds in sorted(view.suspects.items())
    )


def waiting_for(view: StatusView) -> str:
    """
    In a few words, what holds up delivery at the node: first a membership
    state that stops it (out of the group, no majority, a view being
    closed), then the members the oldest message waits for.  A delivery
    handler that cannot keep a record comes before all of them: it holds
    up this member whatever the group does.
    """
    if view.stuck:
        handler, index, reason, seconds = view.stuck[0]
        more = f" (and {len(view.stuck) - 1} more)" if len(view.stuck) > 1 else ""
        return (
            f"delivery handler {handler}{more} cannot keep record {index}"
            f" ({reason}) for {seconds:g} s; nothing from there is handed out"
        )
    if view.state == "removed":
        why = f": {view.removed_because}" if view.removed_because else ""
        return (
            f"this member is out of the group{why}; it delivers nothing more"
            " (the others went on without it)"
        )
    where = f"view {view.view}" if view.view is not None else "the view"
    if view.view_members:
        where += f" ({', '.join(view.view_members)})"
    if view.state == "blocked":
        suspects = f"; suspected: {_suspected(view)}" if view.suspects else ""
        return (
            f"no majority of {where} is reachable{suspects}; nothing new is"
            " delivered until enough of them are back"
        )
    if view.state == "flushing":
        without = f" without {_suspected(view)}" if view.suspects else ""
        return (
            f"{where} is being closed (a view change{without}); delivery goes on"
            " in the next view"
        )
    if view.waiting_for:
        text = f"the node waits for {', '.join(view.waiting_for)}"
        down = [name for name in view.waiting_for if name in view.disconnected]
        if down:
            text += f" (not connected: {', '.join(down)})"
        elif silent := [name for name in view.waiting_for if name in view.silent]:
            text += f" (silent: {', '.join(silent)})"
        return text
    if view.disconnected:
        return f"the node is not connected to {', '.join(view.disconnected)}"
    return "the node waits for no member"


def _scalar(value: object) -> str:
    if value is None:
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value) if value else "(none)"
    return str(value)


def format_status(status: Mapping[str, object], depth: int = 0) -> list[str]:
    """
    The node's status for people: one C{key: value} line per entry, keys
    with spaces for underscores, nested mappings indented under their key,
    lists comma-separated (or one C{-} item per line when they hold
    mappings).  Any key is shown, so that the summary keeps up with what the
    node reports.

    @param status: The status, as decoded from JSON.
    @param depth: How deep the entries are nested (for indentation).
    @return: The lines.
    """
    pad = "  " * depth
    lines: list[str] = []
    for key, value in status.items():
        label = f"{pad}{str(key).replace('_', ' ')}:"
        if isinstance(value, Mapping):
            if value:
                lines.append(label)
                lines.extend(format_status(value, depth + 1))
            else:
                lines.append(f"{label} (none)")
        elif isinstance(value, list) and any(
            isinstance(item, Mapping | list) for item in value
        ):
            lines.append(label)
            for item in value:
                if isinstance(item, Mapping):
                    lines.append(f"{pad}  -")
                    lines.extend(format_status(item, depth + 2))
                else:
                    lines.append(f"{pad}  - {_scalar(item)}")
        else:
            lines.append(f"{label} {_scalar(value)}")
    return lines


# The status keys that status_lines says in its summary lines; the rest of
# its output leaves them out rather than say them twice.
_SUMMARISED = (
    "view",
    "view_members",
    "state",
    "removed_because",
    "refused_because",
    "suspects",
    "view_changes",
    "last_view_change_s",
)


def status_lines(status: Mapping[str, object]) -> list[str]:
    """
    The node's status as C{isis status} prints it: first what holds up
    delivery (C{blocked: ...}, or C{blocked: no}), then, for a member that
    can never be let in, why (C{refused: ...}), then the view (id,
    members and state), the suspects with how long each has been
    suspected, the view changes and how long the last took, then every
    other entry as L{format_status} shows it.

    @param status: The status, as decoded from JSON.
    @return: The lines.
    """
    view = read_status(status)
    lines = []
    stopped = view.state in ("removed", "blocked", "flushing") or bool(view.stuck)
    if stopped or view.waiting_for or view.disconnected:
        age = (
            f", its oldest message for {view.oldest_age:g} s"
            if view.oldest_age is not None and not stopped
            else ""
        )
        lines.append(f"blocked: {waiting_for(view)}{age}")
    else:
        lines.append("blocked: no")
    refused = status.get("refused_because")
    if isinstance(refused, str):
        lines.append(f"refused: {refused}")
    if view.view is not None:
        members = f" of {', '.join(view.view_members)}" if view.view_members else ""
        state = f" ({view.state})" if view.state is not None else ""
        lines.append(f"view: {view.view}{members}{state}")
    elif view.state is not None:
        lines.append(f"state: {view.state}")
    if view.removed_because is not None and view.state != "removed":
        lines.append(f"removed because: {view.removed_because}")
    if "suspects" in status:
        lines.append(f"suspects: {_suspected(view) or '(none)'}")
    if view.view_changes is not None:
        last = (
            f", the last took {view.last_view_change * 1000:.0f} ms"
            if view.last_view_change is not None and view.view_changes
            else ""
        )
        lines.append(f"view changes: {view.view_changes}{last}")
    rest = {k: v for k, v in status.items() if k not in _SUMMARISED}
    lines.extend(format_status(rest))
    return lines


def run_status(
    reactor: object, proto: ClientProtocol, options: StatusOptions, console: Console
) -> Deferred[int]:
    """
    C{isis status}: print the node's status.

    @param reactor: Unused; there for a signature common to all commands.
    @param proto: The connection to the node.
    @param options: The parsed C{status} options.
    @param console: Where to print.
    @return: A L{Deferred} that fires with the exit status, or fails with
        the node's refusal or the connection error.
    """

    def show(status: dict[str, object]) -> int:
        if options["json"]:
            console.out(json.dumps(status, indent=2, ensure_ascii=False))
        else:
            for line in status_lines(status):
                console.out(line)
        return EXIT_OK

    return (
        proto.status()
        .addTimeout(options["answer-timeout"], IReactorTime(reactor))
        .addCallback(show)
    )
