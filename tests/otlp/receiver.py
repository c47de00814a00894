#!/usr/bin/env python3
"""An OTLP/HTTP trace receiver for mm-trace's tests, built on the official OpenTelemetry protobuf
definitions (PyPI `opentelemetry-proto`, with `protobuf`).

Listens on 127.0.0.1 (an ephemeral port unless --port is given), prints `PORT <n>` on stdout once
it listens, and answers each POST with the next response of its script; the last one repeats:

    200        accept (an empty ExportTraceServiceResponse)
    503, 429   refuse for now (with `Retry-After: <--retry-after>` when given)
    400        refuse for good
    hang       read the request, then never answer (the connection stays open)

Every request is decoded with ExportTraceServiceRequest and written as one JSON line to --out:
time, path, headers, the answer, and the resource spans with ids as hex and attribute values
as JSON values. A body that does not decode is recorded with its error and answered 400.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attributes(kvs):
    out = {}
    for kv in kvs:
        if kv.key in out:
            out.setdefault("__duplicate_keys__", []).append(kv.key)
        out[kv.key] = any_value(kv.value)
    return out


def span(s):
    return {
        "trace_id": s.trace_id.hex(),
        "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(),
        "flags": s.flags,
        "name": s.name,
        "kind": s.kind,
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
        "attributes": attributes(s.attributes),
        "status": {"code": s.status.code, "message": s.status.message},
    }


def decode(body):
    req = trace_service_pb2.ExportTraceServiceRequest()
    req.ParseFromString(body)
    return [
        {
            "resource": attributes(rs.resource.attributes),
            "scopes": [
                {"name": ss.scope.name, "version": ss.scope.version, "spans": [span(s) for s in ss.spans]}
                for ss in rs.scope_spans
            ],
        }
        for rs in req.resource_spans
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--script", default="200")
    ap.add_argument("--retry-after", default=None)
    args = ap.parse_args()
    script = [s.strip() for s in args.script.split(",") if s.strip()]
    lock = threading.Lock()
    state = {"n": 0}
    out = open(args.out, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                step = script[min(state["n"], len(script) - 1)]
                state["n"] += 1
            record = {
                "t": time.time(),
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "answer": step,
                "bytes": len(body),
            }
            try:
                record["resource_spans"] = decode(body)
            except DecodeError as e:
                record["error"] = str(e)
                step = "400"
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()
            if step == "hang":
                while True:
                    time.sleep(3600)
            code = int(step)
            if 200 <= code < 300:
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                ctype = "application/x-protobuf"
            else:
                payload = f"receiver script says {code}".encode()
                ctype = "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            if code in (429, 503) and args.retry_after is not None:
                self.send_header("Retry-After", args.retry_after)
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
