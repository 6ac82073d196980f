"""Calls Allegro's tempopb.StreamingQuerier over gRPC with grpcio, as tempo-cli's
`query api search --use-grpc` does with grpc-go: an insecure channel, the tenant in
`x-scope-orgid` metadata (empty when none is given), a server-streaming call read to its end.

Usage:
  query_grpc.py HOST:PORT search QUERY START END [LIMIT]
  query_grpc.py HOST:PORT tag-values TAG QUERY

Prints one JSON object per streamed message on stdout, then `{"status": "OK"}` or
`{"status": CODE, "details": TEXT}` when the call fails. The messages are encoded and decoded
here by hand from the field numbers of Tempo 2.7's pkg/tempopb/tempo.proto, so that this client
shares no declaration with the server. net/tests/python_sdk.rs checks the output.
"""

import json
import sys

import grpc


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value) if value else b""


def field_bytes(number, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data if data else b""


def fields(data):
    """Yields (field number, wire type, value) of a protobuf message."""
    pos = 0

    def read_varint():
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, read_varint()
        elif wire == 2:
            length = read_varint()
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == 1:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == 5:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"wire type {wire} in field {number}")


SEARCH_METRICS = {
    1: "inspectedTraces",
    2: "inspectedBytes",
    3: "totalBlocks",
    4: "completedJobs",
    5: "totalJobs",
    6: "totalBlockBytes",
    7: "inspectedSpans",
}


METADATA_METRICS = {
    1: "inspectedBytes",
    2: "totalJobs",
    3: "completedJobs",
    4: "totalBlocks",
    5: "totalBlockBytes",
}


def decode_metrics(data, names):
    return {names.get(n, str(n)): v for n, w, v in fields(data) if w == 0}


def decode_search_response(data):
    message = {"traces": []}
    for number, _, value in fields(data):
        if number == 1:
            trace = {}
            for n, _, v in fields(value):
                if n == 1:
                    trace["traceID"] = v.decode()
                elif n == 2:
                    trace["rootServiceName"] = v.decode()
                elif n == 3:
                    trace["rootTraceName"] = v.decode()
                elif n == 4:
                    trace["startTimeUnixNano"] = v
                elif n == 7:
                    trace["spanSets"] = trace.get("spanSets", 0) + 1
            message["traces"].append(trace)
        elif number == 2:
            message["metrics"] = decode_metrics(value, SEARCH_METRICS)
    return message


def decode_tag_values_v2(data):
    message = {"tagValues": []}
    for number, _, value in fields(data):
        if number == 1:
            tag = {}
            for n, _, v in fields(value):
                tag["type" if n == 1 else "value"] = v.decode()
            message["tagValues"].append(tag)
        elif number == 2:
            message["metrics"] = decode_metrics(value, METADATA_METRICS)
    return message


def main():
    target, method = sys.argv[1], sys.argv[2]
    if method == "search":
        query, start, end = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        limit = int(sys.argv[6]) if len(sys.argv) > 6 else 0
        path = "/tempopb.StreamingQuerier/Search"
        request = (
            field_varint(4, limit)
            + field_varint(5, start)
            + field_varint(6, end)
            + field_bytes(8, query)
        )
        decode = decode_search_response
    elif method == "tag-values":
        tag, query = sys.argv[3], sys.argv[4]
        path = "/tempopb.StreamingQuerier/SearchTagValuesV2"
        request = field_bytes(1, tag) + field_bytes(2, query)
        decode = decode_tag_values_v2
    else:
        raise SystemExit(f"unknown method {method!r}")

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream(path)(
            request, metadata=[("x-scope-orgid", "")], timeout=30
        )
        try:
            for response in call:
                print(json.dumps(decode(response)), flush=True)
        except grpc.RpcError as err:
            print(json.dumps({"status": err.code().name, "details": err.details()}))
            return
    print(json.dumps({"status": "OK"}))


if __name__ == "__main__":
    main()
