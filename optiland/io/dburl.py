"""Database connection strings: a password is moved out of the URL into PGPASSWORD (as libpq reads it) and never
shown (`redact`). Used by the scenario (which keeps the URL) and by the PostGIS reader and writers."""

from __future__ import annotations

import os
import re

_URL_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/@]*):([^@]*)@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(url: str | None) -> str:
    """The connection string with any password replaced by ``***`` (for messages and records)."""
    if not url:
        return ""
    return _KEYWORD_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))


def without_password(url: str) -> str:
    """The URL without its password; a password found in it goes to this process's PGPASSWORD for libpq."""
    match = _URL_PASSWORD.match(url)
    if match:
        from urllib.parse import unquote

        os.environ["PGPASSWORD"] = unquote(match.group(2))
        return _URL_PASSWORD.sub(r"\1@", url)
    keyword = _KEYWORD_PASSWORD.search(url)
    if keyword:
        os.environ["PGPASSWORD"] = keyword.group(2).strip("'")
        return _KEYWORD_PASSWORD.sub("", url).strip()
    return url
