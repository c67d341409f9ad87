"""
Tests for L{isis_twisted.api.webformat}: what the HTTP API reads and writes.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from isis_twisted.api.webformat import (
    BodyError,
    answer_fields,
    delivery_line,
    error_body,
    json_bytes,
    media_type,
    ndjson_line,
    read_payloads,
    sse_event,
    stream_fields,
    wants_events,
    wants_ndjson,
)
from isis_twisted.core.checker import record_to_json
from isis_twisted.core.engine import Delivery, ViewChange


class ReadPayloadsTests(SynchronousTestCase):
    """
    L{read_payloads} reads a body by its content type.
    """

    def refused(self, content_type: bytes | None, body: bytes) -> BodyError:
        with self.assertRaises(BodyError) as caught:
            read_payloads(content_type, body)
        error: BodyError = caught.exception
        return error

    def test_raw(self) -> None:
        """
        A body without a type, or of a raw type, is one message as it is,
        whatever its bytes (JSON in text/plain included).
        """
        for kind in (None, b"application/octet-stream", b"text/plain; charset=x"):
            self.assertEqual(read_payloads(kind, b'["a"]\n\xff'), [b'["a"]\n\xff'])
        self.assertEqual(read_payloads(b"TEXT/PLAIN", b""), [b""])

    def test_json_array(self) -> None:
        """
        A JSON array holds messages, strings (as UTF-8) or base64 objects.
        """
        body = json.dumps(["h\u00e9", {"base64": "AP8="}, ""]).encode()
        self.assertEqual(
            read_payloads(b"application/json", body), [b"h\xc3\xa9", b"\x00\xff", b""]
        )

    def test_json_one(self) -> None:
        """
        A JSON body may be one message.
        """
        self.assertEqual(read_payloads(b"application/json", b'"x"'), [b"x"])
        self.assertEqual(
            read_payloads(b"application/json", b'{"base64": "eA=="}'), [b"x"]
        )

    def test_ndjson_mixed(self) -> None:
        """
        A body of strings only is read at once; one with other values, or
        a line holding two values, line by line, naming the bad line.
        """
        self.assertEqual(
            read_payloads(b"application/x-ndjson", b'"a"\n"b\\n"\n'), [b"a", b"b\n"]
        )
        error = self.refused(b"application/x-ndjson", b'"a"\n"b", "c"\n')
        self.assertIn("line 2 is not JSON", str(error))
        error = self.refused(b"application/x-ndjson", b'"a"\n["b"]')
        self.assertIn("line 2 is a list", str(error))

    def test_ndjson(self) -> None:
        """
        NDJSON is one message per line; blank lines are skipped.
        """
        body = b'"a"\n\n{"base64": "Yg=="}\r\n"c"'
        for kind in (
            b"application/x-ndjson",
            b"application/ndjson",
            b"application/jsonl",
        ):
            self.assertEqual(read_payloads(kind, body), [b"a", b"b", b"c"])

    def test_bad_json(self) -> None:
        """
        A body that is not JSON, not UTF-8 or not of the messages' form is
        refused with 400 and a sentence naming the place.
        """
        cases = [
            (b"application/json", b"[1", "the body is not JSON"),
            (b"application/json", b"\xff", "the body is not UTF-8"),
            (b"application/json", b"[1]", "message 1 is a number"),
            (b"application/json", b'["a", null]', "message 2 is a null"),
            (b"application/json", b'[{"base64": "!!"}]', "message 1's base64"),
            (b"application/json", b'[{"base64": "AA==", "x": 1}]', "message 1 is"),
            (b"application/json", b"3", "a JSON body is an array"),
            (b"application/json", b"[]", "holds no message"),
            (b"application/x-ndjson", b'"a"\n{"b": 1}', "line 2 is a object"),
            (b"application/x-ndjson", b'"a"\nnope', "line 2 is not JSON"),
            (b"application/x-ndjson", b"\n\n", "holds no message"),
            (b"application/json", b'["\\ud800"]', "lone surrogate"),
        ]
        for kind, body, said in cases:
            error = self.refused(kind, body)
            self.assertEqual(error.code, 400, body)
            self.assertIn(said, str(error))

    def test_unknown_type(self) -> None:
        """
        A type the API does not read is refused with 415, naming the ones
        it reads; a form gets a hint for curl.
        """
        error = self.refused(b"multipart/form-data; boundary=x", b"")
        self.assertEqual(error.code, 415)
        self.assertIn("'multipart/form-data' is not one this API reads", str(error))
        self.assertIn("application/x-ndjson", str(error))
        error = self.refused(b"application/x-www-form-urlencoded", b"a=b")
        self.assertEqual(error.code, 415)
        self.assertIn("--data-binary", str(error))


class OutputTests(SynchronousTestCase):
    """
    Records, events and errors as the API writes them.
    """

    def test_stream_fields(self) -> None:
        """
        A delivery in the stream is the C{jsonl:} handler's line with its
        view added; a view change is that line as it is.
        """
        text = Delivery(3, "a", 7, b"hi", after=2)
        binary = Delivery(4, "b", 8, b"\xff")
        view = ViewChange(2, ("a", "b"), 5)
        for record in (text, binary):
            fields = stream_fields(record, 1)
            self.assertEqual(fields.pop("view"), 1)
            self.assertEqual(fields, json.loads(record_to_json(record)))
        self.assertEqual(stream_fields(view, 2), json.loads(record_to_json(view)))
        self.assertEqual(stream_fields(binary, 1)["payload_b64"], "/w==")

    def test_delivery_line(self) -> None:
        """
        The stream's fast form of a delivery is exactly what the general one
        writes, whatever the payload and sender hold.
        """
        payloads = [
            b"",
            b"plain",
            b'"q" \\ /',
            "\u00e9\u2028\U0001f600".encode(),
            b"\x00\x1f\x7f",
        ]
        for payload in [*payloads, b"\xff\xfe"]:
            for after in (None, 0, 5):
                for view in (None, 0, 3):
                    record = Delivery(9, 'b"\u00e9', 4, payload, after)
                    self.assertEqual(
                        delivery_line(record, view),
                        json_bytes(stream_fields(record, view)),
                        (payload, after, view),
                    )

    def test_answer_fields(self) -> None:
        """
        A POST's answer gives a record's place, not its payload.
        """
        self.assertEqual(
            answer_fields(Delivery(3, "a", 7, b"hi", after=2), 1),
            {"index": 3, "sender": "a", "clock": 7, "view": 1, "after": 2},
        )
        self.assertNotIn("after", answer_fields(Delivery(3, "a", 7, b""), None))

    def test_sse_event(self) -> None:
        """
        An event is its type, id and one line of JSON data, then a blank
        line; newlines in the data are escaped.
        """
        self.assertEqual(
            sse_event({"p": "a\nb"}, "view", 9),
            b'event: view\nid: 9\ndata: {"p":"a\\nb"}\n\n',
        )
        self.assertEqual(sse_event([1]), b"data: [1]\n\n")

    def test_ndjson_line(self) -> None:
        """
        One compact line, UTF-8 left as it is.
        """
        self.assertEqual(ndjson_line({"p": "\u00e9"}), '{"p":"\u00e9"}\n'.encode())

    def test_error_body(self) -> None:
        """
        An error is a sentence and what goes with it.
        """
        self.assertEqual(
            json.loads(error_body("no", waiting_for=["b"])),
            {"error": "no", "waiting_for": ["b"]},
        )

    def test_negotiation(self) -> None:
        """
        NDJSON only when asked for; media types are read without their
        parameters.
        """
        self.assertTrue(wants_ndjson([b"text/html, application/x-ndjson;q=0.9"]))
        # Qualities: the higher wins, a tie goes to SSE, q=0 refuses.
        both = b"text/event-stream, application/x-ndjson;q=0.1"
        self.assertFalse(wants_ndjson([both]))
        self.assertTrue(
            wants_ndjson([b"text/event-stream;q=0.2, application/x-ndjson"])
        )
        self.assertFalse(wants_ndjson([b"application/x-ndjson;q=0"]))
        self.assertFalse(wants_ndjson([b"application/x-ndjson, text/event-stream"]))
        self.assertTrue(wants_events([b"text/event-stream;q=0.5"]))
        self.assertFalse(wants_events([b"text/event-stream;q=0, */*"]))
        self.assertFalse(wants_ndjson([b"*/*"]))
        self.assertFalse(wants_ndjson([]))
        self.assertEqual(
            media_type(b" Application/JSON ; charset=utf-8"), "application/json"
        )
        self.assertEqual(media_type(None), "")
