"""Database connection strings: a password is moved out of the URL into PGPASSWORD (as libpq reads it) and never
shown (`redact`). Used by the scenario (which keeps the URL) and by the PostGIS reader and writers.

A password typed on the command line would show in `ps` for as long as the command runs, so the command refuses one
in `--db` (`command_line_url`): it is read from PGPASSWORD, ~/.pgpass or a libpq service file instead."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from optiland.errors import OptilandError

_SCHEME = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^(postgres(?:ql)?://[^:/@?#]*):([^@/?#]*)@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&])password=([^&#]*)", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(url: str | None) -> str:
    """The connection string with any password replaced by ``***`` (for messages and records): the URL's user
    information, a ``password=`` query parameter (up to the next ``&``), or a libpq ``password=`` keyword."""
    if not url:
        return ""
    if _SCHEME.match(url):
        return _QUERY_PASSWORD.sub(r"\1password=***", _URL_PASSWORD.sub(r"\1:***@", url))
    return _KEYWORD_PASSWORD.sub(r"\1***", url)


def has_password(url: str | None) -> bool:
    """Whether the connection string holds a password."""
    return bool(url) and redact(url) != url


def without_password(url: str) -> str:
    """The URL without its password; a password found in it goes to this process's PGPASSWORD for libpq."""
    if _SCHEME.match(url):
        match = _URL_PASSWORD.match(url)
        if match:
            os.environ["PGPASSWORD"] = unquote(match.group(2))
            url = _URL_PASSWORD.sub(r"\1@", url)
        query = _QUERY_PASSWORD.search(url)
        if query:
            os.environ["PGPASSWORD"] = unquote(query.group(2))
            url = _QUERY_PASSWORD.sub(lambda m: m.group(1), url)
            url = url.replace("?&", "?").replace("&&", "&").rstrip("?&")
        return url
    keyword = _KEYWORD_PASSWORD.search(url)
    if keyword:
        os.environ["PGPASSWORD"] = keyword.group(2).strip("'")
        return " ".join(_KEYWORD_PASSWORD.sub("", url).split())
    return url


def command_line_url(url: str | None, option: str = "--db") -> str | None:
    """A connection string given on the command line: refused if it holds a password (anyone on the machine could
    read it in `ps` while the command runs)."""
    if url and has_password(url):
        raise OptilandError(f"{option} {redact(url)}: a password on the command line shows in `ps` to every user of "
                            f"the machine; give it in PGPASSWORD, ~/.pgpass, or a service file (PGSERVICEFILE, "
                            f"{option} 'postgresql:///?service=NAME')")
    return url
