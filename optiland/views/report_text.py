"""The report's words for things the results files hold in English or in machine form: times, the solver's gap,
scientific names, units, catalog sources and run notes, in the report's language.

A Chinese report is printed and signed by a county bureau, so it carries no English: what a file holds as a
sentence (a catalog source, a run note) is shown as a Chinese summary naming what it rests on, with the place of the
full text; names the input gives (villages, parcels), paths, checksums, software names and Latin scientific names
are shown as they are (tests/test_report.py names the allow-list and why).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from optiland.views.report_page import format_general, no_negative_zero

BEIJING = timezone(timedelta(hours=8))


def format_time(stamp: Any, lang: str) -> str:
    """An ISO time stamp of run.json for a reader: Beijing time written in Chinese for zh, UTC for en; a stamp
    that is not ISO is returned as it is."""
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        return str(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if lang == "zh":
        local = moment.astimezone(BEIJING)
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（北京时间）"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def format_percent(value: float, digits: int = 2) -> str:
    """A share as a percentage to ``digits`` significant digits at least, never in exponent form or "-0"."""
    percent = value * 100
    if percent == 0:
        return "0%"
    return format_general(percent, digits) + "%"


def gap_words(gap: float | None, status: str, strings: Mapping[str, Any]) -> str:
    """The relative gap as a planner reads it: "within 0.082% of the optimum" ("与最优解相差不超过 0.082%")."""
    if gap is None:
        return strings["dash"]
    if gap <= 0:
        return strings["gap_zero"]
    return strings["gap_within"].format(gap=format_percent(float(gap)))


# ------------------------------------------------------------------------------------------------------------
# Scientific names

_BINOMIAL = re.compile(r"[A-Z][a-z]+(?: (?:spp?\.|[a-z]+(?:-[a-z]+)?))?(?: (?:var\.|subsp\.|f\.) [a-z]+)?"
                       r"(?: '[^']+')?")
"""A Latin name: genus, epithet or sp./spp., an infraspecific rank and epithet, a quoted cultivar (ICN/ICNCP)."""


def latin_names(value: str) -> str:
    """The Latin names of a catalog's scientific_name, without its English glosses: "Genus species (red-fleshed
    cultivar)" -> "Genus species"; "Genus and Othergenus spp. under canopy" -> "Genus、Othergenus spp."."""
    plain = re.sub(r"\s*\([^)]*\)", "", value)
    names: list[str] = []
    for part in re.split(r",\s*|\s+and\s+|\s*;\s*", plain):
        found = _BINOMIAL.match(part.strip())
        if found and found[0] not in names:
            names.append(found[0])
    return "、".join(names)


# ------------------------------------------------------------------------------------------------------------
# Catalog sources

_REFERENCES: tuple[tuple[str, str], ...] = (
    (r"seed 0*(?P<seed>\d{1,3})(?:\s*\((?:[^)]*)\))?(?:,? (?P<part>stage|p|chart) ?(?P<n>\d+)(?:\s*-\s*(?P<m>\d+))?)?",
     "seed"),
    (r"COEFFICIENTS\.md", "coefficients"),
    (r"BRIEF\.md", "brief"),
    (r"data[ -]model", "data_model"),
    (r"GB/T 21010", "gbt21010"),
    (r"Farmers' Daily", "farmers_daily"),
    (r"China Daily", "china_daily"),
    (r"Water and Soil Conservation Law", "soil_law"),
    (r"Grain-for-Green", "grain_for_green"),
    (r"\bNBS\b", "nbs"),
)


def _numeral(n: str, names: Mapping[str, Any]) -> str:
    """A stage or paragraph number in the language's numerals where it has them (第三阶段), else as written."""
    numerals = names.get("numerals") or []
    return str(numerals[int(n)]) if int(n) < len(numerals) else n


def cite(source: Any, strings: Mapping[str, Any]) -> str:
    """A catalog source in the report's language. English: as written. Chinese: whether the figure is an
    assumption, and the documents it names (the seeds by their titles, the project's notes, standards, laws and
    newspapers), e.g. "假设；参见《环江县科技扶贫二十五年》第三阶段、《系数说明》"; the full English text stays in the
    catalog file, which the page names."""
    if not isinstance(source, str) or not source.strip():
        return strings["dash"]
    names = strings.get("sources")
    if not names:
        return source
    cited: dict[str, list[str]] = {}  # title -> the parts of it cited (stages, paragraphs), in order
    for pattern, key in _REFERENCES:
        for found in re.finditer(pattern, source):
            title = names["seeds"].get(found["seed"].zfill(3)) if key == "seed" else names[key]
            if title is None:
                continue
            parts = cited.setdefault(title, [])
            if key == "seed" and found["part"]:
                first, last = _numeral(found["n"], names), found["m"] and _numeral(found["m"], names)
                where = names[f"part_{found['part']}"].format(n=first if not last else
                                                              names["range"].format(a=first, b=last))
                if where not in parts:
                    parts.append(where)
    lowered = source.strip().lower()
    kind = ("assumption" if lowered.startswith("assumption") else "identity" if lowered.startswith("identity")
            else "cited")
    if not cited:
        return names[f"{kind}_alone"]
    return names[kind].format(refs="、".join(title + "、".join(parts) for title, parts in cited.items()))


# ------------------------------------------------------------------------------------------------------------
# Run notes


def reference_note(record: Mapping[str, Any] | None, service_label: Any, strings: Mapping[str, Any]) -> str | None:
    """run.json's ``reference`` (the index's R_s) in words, or None when the run used no index."""
    if not record or not record.get("values"):
        return None
    values = strings["list_sep"].join(f"{service_label(s)} {no_negative_zero(f'{float(v):,.2f}')}"
                                      for s, v in record["values"].items())
    kind = strings["reference_kinds"].get(str(record.get("kind", "")), str(record.get("kind", "")))
    return strings["reference_note"].format(kind=kind, values=values)


def translated_notes(notes: list[Any], strings: Mapping[str, Any]) -> tuple[list[str], int]:
    """The run notes a page shows as they are, and how many it leaves to run.json. In English: every note but
    the binding rows and the balance rule (each has its own section). In Chinese: none of the English notes; the
    index reference is shown from run.json's record instead, and the others are counted and pointed to."""
    shown, left = [], 0
    for note in notes:
        if not isinstance(note, str) or note.startswith("binding:") or note.startswith("balance:"):
            continue
        if strings.get("lang_attr") == "zh-CN":
            if not note.startswith("index reference"):
                left += 1
            continue
        shown.append(note)
    return shown, left
