"""Deterministic test records shared by the client scripts: binary keys and values, headers
(including binary and repeated header keys) and explicit timestamps, so a round trip can be
checked byte for byte."""

BASE_TS = 1_700_000_000_000


def make_records(n, tag="r"):
    records = []
    for i in range(n):
        key = None if i % 7 == 3 else f"{tag}-key-{i}".encode()
        value = (f"{tag}-value-{i}-".encode() + bytes([0, 255, i % 256]) * (1 + i % 5))
        headers = [("h-index", str(i).encode()), ("h-bin", bytes([i % 256, 0, 1]))]
        if i % 3 == 0:
            headers.append(("h-index", b"repeated"))
        records.append({"key": key, "value": value, "headers": headers, "timestamp": BASE_TS + i})
    return records


def index_of(value):
    """The record number encoded in a value produced by make_records."""
    return int(value.split(b"-")[2])


def check_same(expected, got, what):
    problems = []
    for field in ("key", "value", "headers", "timestamp"):
        if expected[field] != got[field]:
            problems.append(f"{what}: {field} differs: expected {expected[field]!r}, got {got[field]!r}")
    return problems


def check_log(expected, got, what):
    """Problems with `got` (dicts with an "offset") as the whole log from offset 0 holding `expected`."""
    problems = [] if len(got) == len(expected) else [f"{what}: read {len(got)} records, expected {len(expected)}"]
    for i, (e, g) in enumerate(zip(expected, got)):
        if g["offset"] != i:
            problems.append(f"{what}: record {i} at offset {g['offset']}")
        problems += check_same(e, g, f"{what} record {i}")
    return problems
