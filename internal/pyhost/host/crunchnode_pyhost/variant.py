"""The model-runner's dynamically typed values (commons.Variant): a type tag plus bytes.

The byte layouts are the protocol's, so the Go coordinator and CrunchDAO's own runner agree:
DOUBLE is 8 bytes little-endian IEEE-754, INT 8 bytes little-endian two's complement, STRING
and JSON are UTF-8, and JSON may carry Python's NaN/Infinity tokens. PARQUET and ARROW are
declared by the protocol but have no use in development, so they are refused clearly.
"""

import json
import struct

NONE, DOUBLE, INT, STRING, PARQUET, ARROW, JSON = range(7)

_NAMES = {NONE: "NONE", DOUBLE: "DOUBLE", INT: "INT", STRING: "STRING", PARQUET: "PARQUET", ARROW: "ARROW", JSON: "JSON"}


class VariantError(ValueError):
    """A value that cannot be encoded, or bytes that do not decode as their tag says."""


def encode(value):
    """Returns (tag, bytes) for a Python value, choosing the tag from its type the way the
    upstream runner does: bool and int are INT (so True is 1), float (numpy.float64 too) is
    DOUBLE, str is STRING, dict and list are JSON. Anything else (a tuple, numpy.int64, …)
    is refused, so a model learns about it in development rather than in production."""
    if value is None:
        return NONE, b""
    if isinstance(value, bool):
        return INT, int(value).to_bytes(8, "little", signed=True)
    if isinstance(value, int):
        try:
            return INT, value.to_bytes(8, "little", signed=True)
        except OverflowError as e:
            raise VariantError(f"int {value} does not fit in 8 bytes") from e
    if isinstance(value, float):
        return DOUBLE, struct.pack("<d", value)
    if isinstance(value, str):
        return STRING, value.encode("utf-8")
    if isinstance(value, (dict, list)):
        try:
            return JSON, json.dumps(value).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise VariantError(f"cannot encode result as JSON: {e}") from e
    raise VariantError(
        f"cannot encode a {type(value).__name__} (want None, bool, int, float, str, dict or list)"
    )


def decode(tag, data):
    """Returns the Python value of a Variant's tag and bytes."""
    if tag == NONE:
        return None
    if tag == DOUBLE:
        if len(data) != 8:
            raise VariantError(f"DOUBLE wants 8 bytes, got {len(data)}")
        return struct.unpack("<d", data)[0]
    if tag == INT:
        if len(data) != 8:
            raise VariantError(f"INT wants 8 bytes, got {len(data)}")
        return int.from_bytes(data, "little", signed=True)
    if tag == STRING:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise VariantError(f"STRING is not UTF-8: {e}") from e
    if tag == JSON:
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise VariantError(f"JSON does not parse: {e}") from e
    raise VariantError(f"unsupported variant type {_NAMES.get(tag, tag)}")
