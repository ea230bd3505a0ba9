"""A small TOML writer for scenario files (the standard library reads TOML but does not write it)."""

from __future__ import annotations

import json
import math
from typing import Any


def _key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted key."""
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML basic-string escapes (\" \\ \n \t \uXXXX)
    return json.dumps(text, ensure_ascii=False)


def value(item: Any) -> str:
    """One TOML value: string, boolean, number, array or inline table."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"TOML has no value for {item!r} here")
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{_key(str(k))} = {value(v)}" for k, v in item.items() if v is not None) + " }"
    raise ValueError(f"cannot write {type(item).__name__} as TOML")


def dumps(data: dict[str, Any]) -> str:
    """A scenario-shaped dict as TOML: top-level scalars, then one table per section.

    Within a section, dict values become inline tables and lists of dicts become arrays of tables.
    """
    lines: list[str] = []
    sections = []
    for key, item in data.items():
        if item is None or item == {} or item == []:
            continue
        if isinstance(item, dict):
            sections.append((key, item))
        else:
            lines.append(f"{_key(key)} = {value(item)}")
    for name, section in sections:
        tables = []
        lines.append("")
        lines.append(f"[{_key(name)}]")
        for key, item in section.items():
            if item is None or item == {} or item == []:
                continue
            if isinstance(item, list) and item and all(isinstance(v, dict) for v in item):
                tables.append((key, item))
            else:
                lines.append(f"{_key(str(key))} = {value(item)}")
        for key, rows in tables:
            for row in rows:
                lines.append("")
                lines.append(f"[[{_key(name)}.{_key(key)}]]")
                lines.extend(f"{_key(str(k))} = {value(v)}" for k, v in row.items() if v is not None)
    return "\n".join(lines).lstrip("\n") + "\n"
