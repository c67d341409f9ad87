"""
Tests for the benchmark suite's own parts (bench/): the latency histogram,
the order check that makes a fast but wrong run fail, the report, and one
small real run of each of our two systems.  They prove the suite measures
and checks what it says; they time nothing.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.trial.unittest import TestCase

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import report
import suite
from bench_node import ORDER_RECORD
from http_driver import StreamReader, bodies
from latency import LatencyHistogram
from load import BatchedLoad
from twisted.internet.defer import Deferred


class LatencyHistogramTests(TestCase):
    """
    L{LatencyHistogram} gives percentiles within its 2 % bucket width.
    """

    def test_percentiles(self) -> None:
        """
        Every percentile is at or above the exact one and at most about 2 %
        over it; the maximum is exact.
        """
        rng = random.Random(4)
        values = [rng.lognormvariate(-7, 1.5) for _ in range(20000)]
        histogram = LatencyHistogram()
        for v in values:
            histogram.record(v)
        values.sort()
        for q in (0.5, 0.9, 0.99):
            exact = values[int(q * len(values)) - 1] * 1000
            got = histogram.percentile(q)
            self.assertGreaterEqual(got, exact * 0.999)
            self.assertLess(got, exact * 1.03)
        self.assertEqual(histogram.summary()["max"], values[-1] * 1000)
        self.assertEqual(histogram.count, 20000)

    def test_merge(self) -> None:
        """
        Histograms merged through their JSON form equal one that recorded
        everything.
        """
        whole, first, second = (LatencyHistogram() for _ in range(3))
        for i in range(1, 1000):
            whole.record(i / 1e4)
            (first if i % 2 else second).record(i / 1e4)
        merged = LatencyHistogram()
        for part in (first, second):
            merged.merge(json.loads(json.dumps(part.counts())), part.maximum)
        self.assertEqual(merged.cdf(), whole.cdf())
        self.assertEqual(merged.summary(), whole.summary())

    def test_empty(self) -> None:
        """
        With nothing recorded there is no percentile to give.
        """
        self.assertRaises(ValueError, LatencyHistogram().percentile, 0.5)

    def test_times(self) -> None:
        """
        A latency recorded C{times} over counts as that many recorded once
        each.
        """
        once, batched = LatencyHistogram(), LatencyHistogram()
        for _ in range(5):
            once.record(0.002)
        batched.record(0.002, 5)
        self.assertEqual(batched.count, 5)
        self.assertEqual(batched.counts(), once.counts())


class BatchedLoadTests(TestCase):
    """
    L{BatchedLoad} sends in batches within its window of messages.
    """

    def test_window_and_batches(self) -> None:
        """
        The first window goes out in full batches (topped up with a smaller
        one); each answer lets as many more go; every message gets its
        batch's latency, and no more than the messages asked for are sent.
        """
        calls: list[tuple[int, Deferred[None]]] = []

        def send(count: int) -> Deferred[None]:
            answer: Deferred[None] = Deferred()
            calls.append((count, answer))
            return answer

        latency = LatencyHistogram()
        load = BatchedLoad(send, 25, 4, 10, latency)
        load.start()
        self.assertEqual([c for c, _ in calls], [4, 4, 2])
        calls[0][1].callback(None)
        self.assertEqual([c for c, _ in calls], [4, 4, 2, 4])
        while not all(d.called for _, d in calls):
            next(d for _, d in calls if not d.called).callback(None)
        self.assertEqual(sum(c for c, _ in calls), 25)
        self.assertEqual(load.sent, 25)
        self.assertEqual(latency.count, 25)


class StreamReaderTests(TestCase):
    """
    L{StreamReader} reads an NDJSON delivery stream as the HTTP API writes
    it.
    """

    def test_lines(self) -> None:
        """
        Deliveries are handed on in order, also when a line is split over
        reads; keep-alives and view changes are skipped, and a last line
        saying why the node ended the stream is kept.
        """
        got: list[dict[str, Any]] = []
        reader = StreamReader(got.append)
        stream = (
            b'{"view":0,"members":["a","b"],"index":0}\n'
            b'{"index":1,"sender":"a","clock":1,"payload":"x","view":0}\n'
            b"\n"
            b'{"index":2,"sender":"b","clock":1,"payload":"y","view":0,"after":1}\n'
            b'{"error":"read too slowly","resume_from":3}\n'
        )
        for at in range(0, len(stream), 7):
            reader.dataReceived(stream[at : at + 7])
        self.assertEqual([f["index"] for f in got], [1, 2])
        self.assertEqual(got[1]["after"], 1)
        self.assertEqual(reader.error, "read too slowly")

    def test_bodies(self) -> None:
        """
        A POST body holds one JSON string per message, the full batch's and
        a smaller one's alike.
        """
        body = bodies(b"xy", 3)
        self.assertEqual(body(3), b'"xy"\n"xy"\n"xy"\n')
        self.assertEqual(body(1), b'"xy"\n')


def write_orders(work: Path, orders: dict[str, list[tuple[int, int]]]) -> None:
    """
    Write members' C{.order} files as bench_node does: (sender number,
    clock) per delivery.
    """
    for name, order in orders.items():
        (work / f"{name}.order").write_bytes(
            b"".join(ORDER_RECORD.pack(s, c, -1) for s, c in order)
        )


class CheckRunTests(TestCase):
    """
    L{suite.check_run} fails a run whose histories break a guarantee.
    """

    def test_agreeing(self) -> None:
        """
        Histories in one order pass, and the records are all counted.
        """
        work = Path(self.mktemp())
        work.mkdir()
        order = [(0, 1), (1, 1), (0, 2), (1, 2)]
        write_orders(work, {"a": order, "b": order})
        self.assertEqual(
            suite.check_run("ordered", 2, work), {"ok": True, "checked": 8}
        )

    def test_disagreeing(self) -> None:
        """
        Two members that delivered the same messages in different orders
        make the run fail, naming the broken guarantee.
        """
        work = Path(self.mktemp())
        work.mkdir()
        write_orders(work, {"a": [(0, 1), (1, 1)], "b": [(1, 1), (0, 1)]})
        error = self.assertRaises(
            suite.BenchmarkError, suite.check_run, "ordered", 2, work
        )
        self.assertIn("total order", str(error))

    def test_pysyncobj_lost_append(self) -> None:
        """
        A PySyncObj member that applied fewer appends than the others fails
        the run; one that only reordered a member's own appends (not
        promised by Raft for pipelined calls) passes with a note, and an
        append committed twice (a resubmission) is counted and dropped.
        """
        work = Path(self.mktemp())
        work.mkdir()
        full = [["a", 2], ["a", 1], ["b", 1]]
        for name in "ab":
            (work / f"{name}.order").write_text(json.dumps(full))
        verdict = suite.check_run("pysyncobj", 2, work)
        self.assertEqual(verdict["not_promised_but_broken"], ["fifo"])
        (work / "a.order").write_text(json.dumps([*full, ["a", 1]]))
        verdict = suite.check_run("pysyncobj", 2, work)
        self.assertEqual(verdict["duplicates"], 1)
        (work / "b.order").write_text(json.dumps(full[:2]))
        error = self.assertRaises(
            suite.BenchmarkError, suite.check_run, "pysyncobj", 2, work
        )
        self.assertIn("agreement", str(error))

    def test_pysyncobj_lost_everywhere(self) -> None:
        """
        An append that no member applied fails the run when the number of
        appends per member is known, even if a duplicate makes the lists
        as long as expected.
        """
        work = Path(self.mktemp())
        work.mkdir()
        lists = [["a", 1], ["a", 2], ["b", 1], ["b", 1]]
        for name in "ab":
            (work / f"{name}.order").write_text(json.dumps(lists))
        error = self.assertRaises(
            suite.BenchmarkError, suite.check_run, "pysyncobj", 2, work, 2
        )
        self.assertIn("validity", str(error))


def run_row(**changes: Any) -> dict[str, Any]:
    """
    A made-up saturation run, as L{suite.one_run} returns it.
    """
    histogram = LatencyHistogram()
    for ms in (1, 2, 3):
        histogram.record(ms / 1000)
    row: dict[str, Any] = {
        "kind": "saturation",
        "system": "ordered",
        "nodes": 3,
        "payload": 100,
        "messages_per_member": 1000,
        "rate": 0.0,
        "deliveries_per_s_per_node": 90000.0,
        "mb_per_s_per_node": 9.0,
        "latency_ms": histogram.summary(),
        "latency_cdf": histogram.cdf(),
        "frames_per_multicast": 0.01,
        "bytes_per_multicast": 224.0,
        "cpu_s_per_1000": 0.007,
        "peak_rss_mb": 50.0,
        "wall_s": 1.0,
        "delivered_min": 3000,
        "check": {"ok": True, "checked": 9000},
    }
    row.update(changes)
    return row


class ReportTests(TestCase):
    """
    L{suite.add_ratios} and L{report.markdown} state the comparison.
    """

    def test_ratios_and_table(self) -> None:
        """
        Ours over raw and over PySyncObj come from the runs with the same n
        and payload, and the table shows them with the memory growth.
        """
        results = [
            run_row(system="raw", deliveries_per_s_per_node=100000.0, check=None),
            run_row(),
            run_row(system="pysyncobj", deliveries_per_s_per_node=7500.0),
            run_row(system="raw", payload=16, deliveries_per_s_per_node=1.0),
            run_row(kind="memory", messages_per_member=33334, peak_rss_mb=50.0),
            run_row(kind="memory", messages_per_member=666667, peak_rss_mb=52.0),
        ]
        suite.add_ratios(results)
        self.assertAlmostEqual(results[1]["over_raw"], 0.9)
        self.assertAlmostEqual(results[1]["over_pysyncobj"], 12.0)
        table = report.markdown(results, ["memory: it broke"])
        self.assertIn("| saturation | isis-twisted | 3 | 100 B | 90,000 |", table)
        self.assertIn("| 0.90 / 12.00 / - | OK |", table)
        self.assertIn("after 2,000,001 (+4.0%)", table)
        self.assertIn("- memory: it broke", table)


class RealRunTests(TestCase):
    """
    One small run of each of our systems, with real processes.
    """

    def test_raw_and_ordered(self) -> None:
        """
        Both systems deliver every message on every member, and the ordered
        run's histories were checked.
        """
        for system in ("raw", "ordered"):
            row = suite.one_run("saturation", system, 2, 100, 300)
            self.assertEqual(row["nodes"], 2)
            self.assertEqual(row["delivered_min"], 600)
            self.assertGreater(row["deliveries_per_s_per_node"], 0)
            self.assertGreater(row["latency_ms"]["p50"], 0)
            self.assertLessEqual(row["frames_per_multicast"], 2)
            if system == "ordered":
                self.assertEqual(row["check"], {"ok": True, "checked": 1200})
            else:
                self.assertIsNone(row["check"])

    def test_client_runs(self) -> None:
        """
        The client-API runs, with several connections per client process and
        through C{isis send}, deliver every message on every member, and
        their histories are checked.
        """
        for options in ({"clients": 3}, {"isis_send": True}):
            row = suite.client_run(2, 100, 300, 100, **options)
            self.assertEqual(row["delivered_min"], 600)
            self.assertEqual(row["check"], {"ok": True, "checked": 1200})
            self.assertGreater(row["deliveries_per_s_per_node"], 0)

    def test_http_run(self) -> None:
        """
        The HTTP API run, in POSTs of 30 with 70 in flight (so smaller POSTs
        top the window up), delivers every message on every member, reads
        the order from the delivery stream and checks it; its row is of its
        own kind, set beside the client API's in the table.
        """
        row = suite.client_run(2, 100, 300, 70, http_batch=30)
        self.assertEqual(row["kind"], "http")
        self.assertEqual(row["delivered_min"], 600)
        self.assertEqual(row["check"], {"ok": True, "checked": 1200})
        self.assertGreater(row["deliveries_per_s_per_node"], 0)
        self.assertGreater(row["latency_ms"]["p50"], 0)
        amp = run_row(kind="client", clients=1, isis_send=False, nodes=2)
        amp.update(node_cpu_s_per_1000=0.01, node_peak_rss_mb=40.0)
        results = [amp, row]
        suite.add_ratios(results)
        self.assertAlmostEqual(
            row["over_amp"], row["deliveries_per_s_per_node"] / 90000.0
        )
        table = suite.markdown(results, [])
        self.assertIn("| HTTP API, POSTs of 30 | isis-twisted | 2 | 100 B |", table)
        self.assertIn("HTTP API over client API (AMP), n = 2, 100 B", table)

    def test_failed_member(self) -> None:
        """
        A member that cannot run makes the run fail with its error.
        """
        with tempfile.TemporaryDirectory() as tmp:
            error = self.assertRaises(
                suite.BenchmarkError,
                suite.run_members,
                "ordered",
                2,
                100,
                0,
                0.0,
                Path(tmp),
            )
        self.assertIn("ordered member failed", str(error))

    def test_wait_stops_at_first_failure(self) -> None:
        """
        A member that fails while another still runs fails the run at once
        with what it said, and the other is killed; a run past its time
        limit fails too.
        """
        work = Path(self.mktemp())
        work.mkdir()
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        crasher = [sys.executable, "-c", "import sys; sys.exit('member c broke')"]
        started = [
            suite._start(sleeper, work / "a.err"),
            suite._start(crasher, work / "c.err"),
        ]
        error = self.assertRaises(suite.BenchmarkError, suite._wait, started, "x", 30)
        self.assertIn("member c broke", str(error))
        self.assertIsNotNone(started[0][0].poll())
        slow = [suite._start(sleeper, work / "b.err")]
        error = self.assertRaises(suite.BenchmarkError, suite._wait, slow, "x", 0.2)
        self.assertIn("still running", str(error))
        self.assertIsNotNone(slow[0][0].poll())
