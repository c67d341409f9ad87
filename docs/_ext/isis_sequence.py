"""
A Sphinx extension that draws the "How it works" sequence diagram by running
the real engine, so the picture cannot drift from the code.

At the start of every build it plays a fixed three-member scenario through
L{isis_twisted.core.engine.Engine}s and writes C{_generated/sequence.svg} (the
diagram) and C{_generated/sequence-steps.md} (the same steps as a table).
"""

from __future__ import annotations

from collections import deque
from html import escape
from pathlib import Path
from typing import Any

from isis_twisted.core.engine import Engine, Frame

MEMBERS = ("a", "b", "c")

# Each step: (kind, member, argument).  "mc" multicasts a payload, "flush"
# ends a member's turn, "recv" takes the oldest frame on the link from the
# argument to the member.
SCENARIO: list[tuple[str, str, str]] = [
    ("mc", "a", "m1"),
    ("flush", "a", ""),
    ("mc", "c", "m2"),
    ("flush", "c", ""),
    ("recv", "b", "a"),
    ("recv", "b", "c"),
    ("flush", "b", ""),
    ("recv", "a", "c"),
    ("flush", "a", ""),
    ("recv", "c", "a"),
    ("flush", "c", ""),
    ("recv", "a", "b"),
    ("recv", "c", "b"),
    ("recv", "b", "a"),
    ("recv", "c", "a"),
    ("recv", "b", "c"),
    ("recv", "a", "c"),
]


def play() -> list[dict[str, Any]]:
    """
    Run the scenario; one record per step with what happened.
    """
    engines = {m: Engine(m, MEMBERS) for m in MEMBERS}
    links: dict[tuple[str, str], deque[tuple[int, Frame]]] = {
        (s, d): deque() for s in MEMBERS for d in MEMBERS if s != d
    }
    names: dict[tuple[int, str], str] = {}
    rows: list[dict[str, Any]] = []
    for number, (kind, member, arg) in enumerate(SCENARIO):
        engine = engines[member]
        row: dict[str, Any] = {"step": number, "kind": kind, "member": member}
        if kind == "mc":
            stamp = engine.multicast(arg.encode())
            names[stamp] = arg
            row["text"] = f"multicast {arg} stamped ({stamp[0]}, {stamp[1]})"
        elif kind == "flush":
            frames = engine.flush()
            for frame in frames:
                for peer in engine.peers:
                    links[(member, peer)].append((number, frame))
            if frames:
                frame = frames[0]
                carried = ", ".join(names[(s, member)] for s, _ in frame.messages)
                what = f"DATA {carried}" if carried else "ACK"
                row["text"] = f"sends {what} with clock {frame.clock} to every peer"
                row["label"] = f"{what} C={frame.clock}"
            else:
                row["text"] = "nothing to send"
        else:
            sent_at, frame = links[(arg, member)].popleft()
            engine.receive(arg, frame)
            row["sent_at"] = sent_at
            row["source"] = arg
            row["text"] = (
                f"receives {arg}'s frame (clock {frame.clock}): clock becomes"
                f" {engine.clock}, horizon of {arg} = {frame.clock}"
            )
        row["delivered"] = [
            f"#{d.index} {names[(d.clock, d.sender)]}" for d in engine.take_deliveries()
        ]
        row["clock"] = engine.clock
        row["horizons"] = {p: h[0] for p, h in engine.horizons().items()}
        rows.append(row)
    return rows


def svg(rows: list[dict[str, Any]]) -> str:
    """
    The sequence diagram of C{rows} as SVG text.
    """
    left, gap, top, step = 90, 220, 60, 38
    x = {m: left + i * gap for i, m in enumerate(MEMBERS)}
    height = top + step * (len(rows) + 1)
    width = left + gap * (len(MEMBERS) - 1) + 160
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='8'"
        " refY='4' orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#444'/>"
        "</marker></defs>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for m in MEMBERS:
        out.append(
            f'<text x="{x[m]}" y="30" text-anchor="middle" font-size="16"'
            f' font-weight="bold">{m}</text>'
        )
        out.append(
            f'<line x1="{x[m]}" y1="40" x2="{x[m]}" y2="{height - 10}"'
            ' stroke="#999" stroke-dasharray="4 3"/>'
        )
    y_of = {r["step"]: top + step * (r["step"] + 1) for r in rows}
    labels = {r["step"]: r.get("label", "") for r in rows}
    for r in rows:
        y = y_of[r["step"]]
        m = r["member"]
        if r["kind"] == "recv":
            y0 = y_of[r["sent_at"]]
            x0, x1 = x[r["source"]], x[m]
            colour = "#26a" if labels[r["sent_at"]].startswith("DATA") else "#999"
            out.append(
                f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y}" stroke="{colour}"'
                ' marker-end="url(#arrow)"/>'
            )
        elif r["kind"] == "flush" and labels[r["step"]]:
            # The label sits by the sender, on the side away from the group.
            anchor, dx = ("end", -12) if m == MEMBERS[-1] else ("start", 12)
            out.append(
                f'<text x="{x[m] + dx}" y="{y + 14}" text-anchor="{anchor}"'
                f' fill="#225" font-weight="bold">{escape(labels[r["step"]])}</text>'
            )
        elif r["kind"] == "mc":
            out.append(
                f'<circle cx="{x[m]}" cy="{y}" r="5" fill="#2a6"/>'
                f'<text x="{x[m] + 10}" y="{y + 4}" fill="#2a6">'
                f"{escape(r['text'].replace('multicast ', ''))}</text>"
            )
        out.append(
            f'<text x="{x[m] - 10}" y="{y - 6}" text-anchor="end" fill="#888"'
            f' font-size="10">C={r["clock"]}</text>'
        )
        if r["delivered"]:
            label = "deliver " + ", ".join(r["delivered"])
            out.append(
                f'<rect x="{x[m] + 8}" y="{y + 6}" width="{8 + 7 * len(label)}"'
                ' height="17" fill="#fde" stroke="#c47"/>'
                f'<text x="{x[m] + 12}" y="{y + 19}" fill="#812">{escape(label)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def table(rows: list[dict[str, Any]]) -> str:
    """
    The steps as a Markdown table.
    """
    lines = [
        "| step | member | what happens | clock | horizons | delivers |",
        "|---:|---|---|---:|---|---|",
    ]
    for r in rows:
        horizons = ", ".join(f"{p}={c}" for p, c in sorted(r["horizons"].items()))
        lines.append(
            f"| {r['step'] + 1} | {r['member']} | {r['text']} | {r['clock']}"
            f" | {horizons} | {', '.join(r['delivered']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def generate(app: Any) -> None:
    """
    Write the diagram and the table into the source tree's C{_generated/}.
    """
    rows = play()
    where = Path(app.srcdir) / "_generated"
    where.mkdir(exist_ok=True)
    (where / "sequence.svg").write_text(svg(rows))
    (where / "sequence-steps.md").write_text(table(rows))


def setup(app: Any) -> dict[str, Any]:
    """
    Register with Sphinx.
    """
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
