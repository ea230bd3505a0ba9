"""CSV tables as planners save them from Excel, and CSV tables optiland writes for Excel to open.

Reading (`read_table`, used for every CSV a scenario names besides the parcel layer: villages, locks, features,
boundaries, parcel costs, price scenarios, conversions): the text is decoded from the declared encoding, else from its
byte-order mark (UTF-8, UTF-16), else as UTF-8, else as GB18030 (the superset of GBK that Excel writes on Chinese
Windows); CRLF, blank lines, rows of empty cells and a repeat of the header line are skipped; cells are stripped
(ideographic spaces too); a cell Excel wrote as an error (``#N/A``, ``#DIV/0!``) and a line whose field count differs
from the header's are refused naming the file, line, column and value. `numbers` reads "1,200" (Excel's thousands
separator) and full-width digits; `duplicate_keys` refuses a key listed twice, naming both lines.

Writing (`write_csv`): UTF-8 with a byte-order mark (Excel opens it cleanly), and a text cell beginning with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return written with a leading apostrophe, so that Excel shows it as text
instead of running it as a formula (OWASP, "CSV Injection"); numbers are never changed. `restore` (used by
`read_table` and by `read_results_csv`, the reader of optiland's own results) removes that apostrophe again, so a
parcel id "-P01" or "=HYPERLINK(...)" comes back as written.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiland.errors import InputError, Issue, Problems

EXCEL_ERRORS = frozenset({"#N/A", "#N/A N/A", "#NA", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!",
                          "#SPILL!", "#CALC!", "#FIELD!", "#GETTING_DATA", "#BLOCKED!", "#UNKNOWN!", "#CONNECT!",
                          "#BUSY!"})
"""Cells Excel writes when a formula failed: never a value."""
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A text cell beginning with one of these is a formula to a spreadsheet (OWASP, "CSV Injection")."""
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# ------------------------------------------------------------------------------------------------------ encodings
def guess_encoding(raw: bytes) -> str | None:
    """The encoding a text that is not UTF-8 most likely has: UTF-16 by its byte-order mark, else GBK (GB 2312's
    superset, the usual one of Chinese tables and Shapefiles) if it decodes; None if neither."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        raw.decode("gbk")
    except UnicodeDecodeError:
        return None
    return "GBK"


def codec_message(path: Path, declared: str | None, section: str, reason: str) -> str:
    """Why a file could not be decoded, and the line to add to the scenario."""
    probe = path.with_suffix(".dbf") if path.suffix.lower() == ".shp" else path
    try:
        guess = guess_encoding(probe.read_bytes()[:1 << 20])
    except OSError:
        guess = None
    fix = (f'declare it in the scenario: [{section}] encoding = "{guess}"' if guess
           else f"declare its encoding in the scenario's [{section}] table (encoding = \"...\")")
    return (f"the text is not in the encoding {'declared' if declared else 'assumed'} ({declared or 'UTF-8'}): "
            f"{reason}; {fix}")


def decode(raw: bytes, path: Path, encoding: str | None = None, section: str | None = None) -> str:
    """The text of a file: in the declared `encoding`, else by its byte-order mark, else UTF-8, else GB18030.
    A text none of these decodes is an InputError naming the file and, with `section`, the key to declare."""
    try:
        if encoding:
            if encoding.replace("-", "").replace("_", "").lower() in ("utf8", "utf8sig") and \
                    raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            return raw.decode(encoding)
        if raw.startswith(codecs.BOM_UTF8):
            return raw[len(codecs.BOM_UTF8):].decode("utf-8")
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return raw.decode("utf-16")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("gb18030")  # Excel's "CSV" on Chinese Windows: GBK, of which GB18030 is a superset
    except UnicodeError as exc:
        message = (codec_message(path, encoding, section, str(exc)) if section else
                   f"the text is neither UTF-8 nor GBK/GB18030 ({exc}): save it from Excel as \"CSV UTF-8\"")
        raise InputError([Issue(message, file=str(path))]) from None
    except LookupError:
        raise InputError([Issue("unknown encoding", file=str(path), column=f"[{section}] encoding" if section else
                                None, value=encoding)]) from None


# -------------------------------------------------------------------------------------------------------- reading
def not_found(path: Path, what: str) -> Issue:
    """'<what> not found', with the likely reason a path written on Windows misses on this machine: backslashes
    (write forward slashes) or a name differing only in case (Windows ignores case, Linux does not)."""
    hint = ""
    text = str(path)
    if "\\" in text:
        hint = f"; the path has backslashes: write it with forward slashes ({text.replace(chr(92), '/')!r})"
    else:
        try:
            same = [p.name for p in path.parent.iterdir() if p.name.lower() == path.name.lower()]
        except OSError:
            same = []
        if same:
            hint = f"; the folder has {same[0]!r} (names differ in case here, not on Windows)"
    return Issue(f"{what} not found{hint}", file=text)


def read_text(path: Path) -> str:
    """A text file a planner edited (a scenario or catalog TOML from Notepad): UTF-8 with or without a byte-order
    mark, else GBK/GB18030 (Notepad's "ANSI" on Chinese Windows), as `decode` reads them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([Issue(f"cannot read the file: {exc.strerror}", file=str(path))]) from None
    return decode(raw, path)


def restore(text: str) -> str:
    """A cell as it was before `write_csv` protected it: the apostrophe before a formula character (or before
    another apostrophe) removed."""
    if len(text) > 1 and text[0] == "'" and (text[1] in FORMULA_START or text[1] == "'"):
        return text[1:]
    return text


def _clean(cell: str) -> str:
    # str.strip removes the ideographic space (U+3000) and no-break spaces Excel pastes, as well as ASCII ones
    stripped = cell.strip()
    return restore(stripped).strip() if stripped[:1] == "'" else stripped


def _rows(text: str, separators: Sequence[str]) -> tuple[str, list[tuple[int, list[str]]]]:
    """The separator (sniffed from the header among `separators`; " " means runs of spaces) and every record with
    the number of the line it starts on."""
    lines = text.splitlines(keepends=True)
    header = next((line for line in lines if line.strip()), "")
    sep = next((s for s in separators if s != " " and s in header), None)
    if sep is None:
        sep = " " if " " in separators and len(header.split()) > 1 else separators[0]
    if sep == " ":
        return sep, [(i + 1, line.split()) for i, line in enumerate(lines)]
    reader = csv.reader(lines, delimiter=sep)
    records: list[tuple[int, list[str]]] = []
    start = 1
    for record in reader:
        records.append((start, record))
        start = reader.line_num + 1
    return sep, records


def read_table(path: Path, what: str, required: Sequence[str], *, encoding: str | None = None,
               section: str | None = None, empty_ok: bool = False, separators: Sequence[str] = (",",),
               strict_width: bool = True) -> pd.DataFrame:
    """Read a CSV table a planner made: every cell a stripped string, the index the line number of each row.

    `what` names the table in messages ("lock table"); `required` columns must be in the header; `encoding` is the
    declared one (None: detected, see `decode`), `section` the scenario table where it would be declared. A
    header without rows is an error unless `empty_ok`. Problems are collected and raised together."""
    file = str(path)
    if not path.is_file():
        raise InputError([not_found(path, what)])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([Issue(f"cannot read the {what}: {exc.strerror}", file=file)]) from None
    sep, records = _rows(decode(raw, path, encoding, section), separators)
    records = [(line, cells) for line, cells in records if "".join(cells).strip()]
    if not records:
        raise InputError([Issue(f"empty file: a {what} has a header line naming its columns "
                                f"({', '.join(required)}) and a row per entry", file=file)])
    header = [_clean(c) for c in records[0][1]]  # as written: a column mapping names them so
    while header and header[-1] == "" and len(header) > len(required):  # Excel's trailing empty columns
        header.pop()
    problems = Problems()
    header = [name or f"(blank column {k + 1})" for k, name in enumerate(header)]
    for k, name in enumerate(header):
        if name in header[:k]:  # which of the two would be read?
            problems.append(Issue(f"column named twice in the header (fields {header.index(name) + 1} and {k + 1})",
                                  file=file, row="line 1", column=name))
    if problems:
        raise InputError(problems)
    missing = [c for c in required if c not in header]
    if missing:
        import difflib

        for column in missing:
            close = difflib.get_close_matches(column, header, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the header has {', '.join(header) or 'nothing'}"
            problems.append(Issue(f"missing column{hint}", file=file, row="line 1", column=column))
        raise InputError(problems)
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    wrong: list[tuple[int, list[str]]] = []
    for number, cells in records[1:]:
        cells = [_clean(c) for c in cells]
        if cells[:width] == header:  # the header again (tables pasted one under another): not a row
            continue
        extra = cells[width:]
        if len(cells) < width or any(extra):
            if strict_width or len(cells) < width:
                wrong.append((number, cells))
                continue
        rows.append(cells[:width])
        lines.append(number)
    problems.each(wrong, lambda item: Issue(
        f"{len(item[1])} fields on this line, {width} in the header (a separator {sep!r} inside a value must be "
        f"quoted)", file=file, row=f"line {item[0]}", value=(sep if sep != " " else " ").join(item[1])[:120]))
    frame = pd.DataFrame(rows, columns=header, index=pd.Index(lines, name="line"), dtype=object)
    if not len(frame) and not wrong and not empty_ok:
        problems.append(Issue(f"no rows under the header: the {what} is empty", file=file, row="line 1"))
    for column in frame.columns:  # any column: an optional one may be read too (a mapped or catalog column)
        cells = frame[column]
        errors = cells.isin(EXCEL_ERRORS)
        problems.each(np.flatnonzero(errors.to_numpy()), lambda p, c=column, s=cells: Issue(
            "an Excel error value, not a value: the formula behind this cell failed in Excel; fix it there and "
            "save again", file=file, row=f"line {s.index[p]}", column=c, value=s.iloc[p]))
    if problems:
        raise InputError(problems)
    return frame


def read_frame(path: Path, what: str, required: Sequence[str] = (), **kwargs: Any) -> pd.DataFrame:
    """A table read by `read_table` (its encodings, blank rows, error cells, field counts), number cells folded
    (`number_text`), then typed by `pandas.read_csv` with `kwargs` (dtype, keep_default_na) as if the file had
    been plain UTF-8: for tables whose readers rely on pandas' type inference (the catalog's)."""
    table = read_table(path, what, required, empty_ok=True)
    folded = table.apply(number_text) if len(table) else table
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(folded.columns))
    writer.writerows(folded.itertuples(index=False, name=None))
    buffer.seek(0)
    frame = pd.read_csv(buffer, **kwargs)
    frame.columns = list(folded.columns)
    frame.index = table.index  # the line numbers, for messages
    return frame


def line(table: pd.DataFrame, position: int) -> str:
    """'line N' of the row at `position` of a `read_table` table (of another table: 'row N', counted from 1)."""
    return f"line {table.index[position]}" if table.index.name == "line" else f"row {position + 1}"


def number_text(cells: pd.Series) -> pd.Series:
    """Text cells as a number parser reads them: a cell that is a number once full-width digits and signs are
    folded (NFKC) and Excel's thousands separators dropped ("1,200" -> "1200", never "1,2") becomes that number's
    text; any other cell stays as it is."""
    if not (cells.dtype == object or isinstance(cells.dtype, pd.StringDtype)):
        return cells

    def fold(cell: object) -> object:
        if not isinstance(cell, str):
            return cell
        text = unicodedata.normalize("NFKC", cell).strip().replace("\u2212", "-")
        text = text.replace(",", "") if _THOUSANDS.match(text) else text
        return text if _NUMBER.match(text) else cell  # text that is no number stays as written

    return cells.map(fold)


def numbers(table: pd.DataFrame, column: str, file: str, problems: list[Issue], *, blank: float | None = None,
            minimum: float | None = None) -> pd.Series:
    """A column of a `read_table` table as floats: full-width digits and Excel's thousands separators ("1,200")
    read; a blank cell is `blank` (None: a problem); text, a non-finite number and one below `minimum` are
    problems naming the line, column and value."""
    cells = table[column].astype(str)
    values = pd.to_numeric(cells.where(cells != "", None), errors="coerce").astype(float)
    text = cells.copy()
    odd = values.isna().to_numpy() & (cells != "").to_numpy()  # only these need folding ("1,200", full width)
    if odd.any():
        text[odd] = number_text(cells[odd].astype(object))
        values[odd] = pd.to_numeric(text[odd].where(text[odd] != "", None), errors="coerce").astype(float)
    for p in np.flatnonzero(values.isna().to_numpy() | ~np.isfinite(values.to_numpy())):
        if text.iloc[p] == "":
            if blank is not None:
                values.iloc[p] = blank
                continue
            problems.append(Issue("missing value", file=file, row=line(table, p), column=column))
        else:
            problems.append(Issue("not a finite number" if not np.isnan(values.iloc[p]) else "not a number",
                                  file=file, row=line(table, p), column=column, value=cells.iloc[p]))
    if minimum is not None:
        for p in np.flatnonzero((values < minimum).to_numpy()):
            problems.append(Issue(f"must be at least {minimum:g}", file=file, row=line(table, p), column=column,
                                  value=cells.iloc[p]))
    return values


def duplicate_keys(table: pd.DataFrame, keys: Sequence[str], file: str, *, identical_ok: bool = False,
                   fix: str = "remove one, or add the values up in one row") -> tuple[pd.DataFrame, list[Issue]]:
    """Rows listing a key (`keys` columns) listed before: an Issue naming both lines, or, with `identical_ok`, a
    row identical to the earlier one dropped (it means the same). Returns the table and the problems."""
    if not len(table):
        return table, []
    repeated = table.duplicated(subset=list(keys), keep=False).to_numpy()  # vectorised: no tuple per row
    if not repeated.any():
        return table, []
    problems: list[Issue] = []
    drop = np.zeros(len(table), dtype=bool)
    first: dict[tuple[str, ...], int] = {}
    key_cells = table[list(keys)].to_numpy()
    for p in np.flatnonzero(repeated):
        k = tuple(key_cells[p])
        if k not in first:
            first[k] = p
            continue
        earlier = first[k]
        if identical_ok and list(table.iloc[p]) == list(table.iloc[earlier]):
            drop[p] = True
            continue
        differs = [c for c in table.columns if c not in keys and table.iloc[p][c] != table.iloc[earlier][c]]
        problems.append(Issue(
            f"{' and '.join(keys)} already listed on {line(table, earlier)}: one row per {' and '.join(keys)} "
            f"({fix})", file=file, row=line(table, p),
            column=differs[0] if differs else keys[-1], value=" / ".join(k)))
    return table[~drop], problems


# -------------------------------------------------------------------------------------------------------- writing
def protect(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading apostrophe; anything else (numbers,
    and text that is a plain number such as "-5", which no spreadsheet runs) as is. Text beginning with an
    apostrophe gets one more, so that `restore` gives back exactly what was written."""
    if isinstance(value, str) and (value.startswith(FORMULA_START) and not _NUMBER.match(value)
                                   or value.startswith("'")):
        return "'" + value
    return value


def write_csv(frame: pd.DataFrame, path: Path | str, **kwargs: Any) -> None:
    """Write a table for Excel: UTF-8 with a byte-order mark, no index, text cells protected (`protect`), numbers
    as they are. Keyword arguments go to `DataFrame.to_csv` (float_format, columns, ...)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("encoding", "utf-8-sig")
    safe = frame.copy(deep=False)
    safe.columns = [protect(str(c)) if isinstance(c, str) else c for c in safe.columns]
    for column in safe.columns:
        series = safe[column]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype) or \
                isinstance(series.dtype, pd.CategoricalDtype):
            safe[column] = series.astype(object).map(protect)
    safe.to_csv(path, **kwargs)


def read_results_csv(path: Path | str, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV optiland wrote with `write_csv`: text cells as they were before `protect` (keyword arguments go to
    `pandas.read_csv`). The text is decoded as `decode` does, so a table a planner opened in Excel and saved again
    (GBK on Chinese Windows, CRLF) still reads."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([Issue(f"cannot read: {exc.strerror}", file=str(path))]) from None
    kwargs.pop("encoding", None)
    frame = pd.read_csv(io.StringIO(decode(raw, path)), **kwargs)
    frame.columns = [restore(c) if isinstance(c, str) else c for c in frame.columns]
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            frame[column] = series.map(lambda v: restore(v) if isinstance(v, str) else v)
    return frame


def csv_text(frame: pd.DataFrame) -> str:
    """The CSV `write_csv` writes, as text without the byte-order mark (for tests and HTTP responses)."""
    buffer = io.StringIO()
    write_csv(frame, buffer, encoding=None)
    return buffer.getvalue()
