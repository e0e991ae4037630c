"""A ``Spans`` plan compiled into Python: one reader and one writer function per plan.

A selected record is read and rewritten on the bridge's hot path, and a generic loop over
the plan costs twice as much as a function with the plan's steps written out (the common
skips inline, adjacent doubles/floats read or packed by one ``struct`` call). The source is
generated from the plan's indices, widths and fixed names only, never from text in a schema.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

from streamchaos.codec.avro_binary import Skip, skip_bytes, varint_end, zigzag_bytes
from streamchaos.codec.mutate import INT_RANGE

_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")

FIXED_FORMAT = {"double": "d", "float": "f"}


def _groups(plan: list[tuple[int, Skip | str | int]]) -> list[list[tuple[int, Any]]]:
    """The plan with each run of adjacent fixed-width targets (doubles, floats) as one
    group, so one ``struct`` call reads or writes them all; other steps stand alone."""
    out: list[list[tuple[int, Any]]] = []
    for index, step in plan:
        fixed = index >= 0 and step in FIXED_FORMAT
        last = out[-1] if out else None
        if fixed and last and last[0][0] >= 0 and last[0][1] in FIXED_FORMAT:
            last.append((index, step))
        else:
            out.append([(index, step)])
    return out


def _packing(group: list[tuple[int, Any]]) -> struct.Struct:
    """The ``struct`` layout of a group of adjacent fixed-width targets (``_groups``)."""
    return struct.Struct("<" + "".join(FIXED_FORMAT[str(kind)] for _, kind in group))


def compile_reader(plan: list[tuple[int, Skip | str | int]], count: int) -> Callable[..., Any]:
    """The plan as one function ``read(p, pos)``: the same steps, skips and checks (an
    out-of-bounds read raises IndexError or struct.error, as the skip functions do). Only
    numbers and fixed names go into the source, never text from a schema."""
    env: dict[str, Any] = {"sb": skip_bytes}
    lines = ["def read(p, pos):"]
    for k, group in enumerate(_groups(plan)):
        index, step = group[0]
        if index >= 0 and step in FIXED_FORMAT:  # adjacent doubles/floats: one unpack
            env[f"U{k}"] = _packing(group).unpack_from
            names = ", ".join(f"v{i}" for i, _ in group) + ","
            lines.append(f"    {names} = U{k}(p, pos)")
            offset = 0
            for i, kind in group:
                width = 8 if kind == "double" else 4
                lines += [f"    a{i} = pos + {offset}", f"    e{i} = pos + {offset + width}"]
                offset += width
            lines.append(f"    pos += {offset}")
        elif index >= 0:  # int/long: the varint inline
            lines += [f"    a{index} = pos", "    n = 0", "    s = 0", "    while True:"]
            lines += ["        b = p[pos]", "        pos += 1", "        n |= (b & 0x7F) << s"]
            lines += ["        if b < 0x80:", "            break", "        s += 7"]
            lines += [f"    v{index} = (n >> 1) ^ -(n & 1)", f"    e{index} = pos"]
        elif type(step) is int:
            lines.append(f"    pos += {step}")
        elif step is skip_bytes:  # lengths under 8192 (one or two bytes): no call
            lines += ["    b = p[pos]", "    if b < 0x80:", "        if b & 1:"]
            lines += ["            pos = sb(p, pos)", "        else:"]
            lines += ["            pos += 1 + (b >> 1)", "    else:", "        c = p[pos + 1]"]
            lines += ["        if c < 0x80 and not b & 1:"]
            lines += ["            pos += 2 + (((b & 0x7F) | (c << 7)) >> 1)", "        else:"]
            lines += ["            pos = sb(p, pos)"]
        elif step is varint_end:
            lines += ["    while p[pos] & 0x80:", "        pos += 1", "    pos += 1"]
        else:
            env[f"s{k}"] = step
            lines.append(f"    pos = s{k}(p, pos)")
    lines += [
        "    if pos != len(p):",
        "        raise IndexError(f'record of {len(p)} bytes, schema says {pos}')",
        "    return [" + ", ".join(f"(a{i}, e{i}, v{i})" for i in range(count)) + "]",
    ]
    exec("\n".join(lines), env)  # generated from the plan above only
    return cast(Callable[..., Any], env["read"])


def compile_writer(
    plan: list[tuple[int, Skip | str | int]], kinds: list[str]
) -> Callable[..., Any]:
    """``Spans.write`` when every target gets a new value, as one function
    ``write_all(p, s, v)``: the payload's slices between the targets, and the targets'
    encodings (adjacent doubles/floats packed by one ``struct`` call), joined once."""
    env: dict[str, Any] = {}
    parts: list[str] = []
    last = "0"  # where the payload's next unchanged slice starts
    for k, group in enumerate(g for g in _groups(plan) if g[0][0] >= 0):
        first, final = group[0][0], group[-1][0]
        parts.append(f"p[{last}:s[{first}][0]]")
        if group[0][1] in FIXED_FORMAT:
            env[f"P{k}"] = _packing(group).pack
            parts.append(f"P{k}(" + ", ".join(f"v[{i}]" for i, _ in group) + ")")
        else:
            env[f"E{k}"] = encoder(kinds[first])
            parts.append(f"E{k}(v[{first}])")
        last = f"s[{final}][1]"
    parts.append(f"p[{last}:]")
    source = "def write_all(p, s, v):\n    return b''.join((" + ", ".join(parts) + "))"
    exec(source, env)  # generated from the plan's indices and fixed names only
    return cast(Callable[..., Any], env["write_all"])


def encoder(kind: str) -> Callable[[Any], bytes]:
    if kind == "double":
        return _DOUBLE.pack
    if kind == "float":
        return _FLOAT.pack
    low, high = INT_RANGE[kind]

    def encode(value: float | int) -> bytes:
        number = int(value)
        if not low <= number <= high:
            raise OverflowError(f"{number} does not fit an Avro {kind}")
        return zigzag_bytes(number)

    return encode
