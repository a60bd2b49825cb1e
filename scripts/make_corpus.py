#!/usr/bin/env python3
"""Writes tests/corpus/: the dirty and hostile inputs the integration tests run tpmap on.

Each case is a folder of input files and an entry in tests/corpus/cases.toml: the command line,
the exit code expected (0, 1 or 2 — never a panic or an abort), and what the output must show.
The harness (tests/it/corpus.rs) also checks every case for what must always hold: rows
conserved, no citizen ID leaked to messages or to outputs other than the accepted extract and the
rejected rows, nothing written outside --out, no live spreadsheet formula, and no half-written
output after a failure.

The base data are the first households of the SYNTHETIC samples (data-samples/) and their
persons: no row describes a real person. Run from the repository root:

    python3 -m venv /tmp/gen && /tmp/gen/bin/pip install pyarrow openpyxl
    /tmp/gen/bin/python scripts/make_corpus.py

pyarrow and openpyxl write the Parquet and Excel cases; everything else is plain Python.
"""

import csv
import io
import json
import os
import shutil
import struct
import sys
import zipfile

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "corpus")
SAMPLES = os.path.join(ROOT, "data-samples")
NOTICE = "# SYNTHETIC test input for tpmap's dirty-input corpus: no row describes a real person."

# A valid citizen ID (check digit correct) planted where no ID belongs: it must never reach a
# message or an output other than the accepted extract and the rejected rows.
CANARY = "1101700230503"
CANARY_DASHED = "1-1017-00230-50-3"


def check_digit(first12):
    s = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return str((11 - s % 11) % 10)


assert check_digit(CANARY[:12]) == CANARY[12]


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        lines = [l for l in f if not l.startswith("#")]
    return list(csv.reader(lines))


def pick_base():
    hh = read_rows(os.path.join(SAMPLES, "households.csv"))
    persons = read_rows(os.path.join(SAMPLES, "persons.csv"))
    head, rows = hh[0], hh[1:]
    # Households deprived in an indicator of TPMAP's 17 (BMN numbers of the bmn-2560 edition):
    # household statuses, income per member under the line, or a member's status.
    hh_cols = [head.index(f"ind_{n}") for n in (4, 5, 8, 9, 10, 11) if f"ind_{n}" in head]
    p_head = persons[0]
    p_cols = [p_head.index(f"ind_{n}") for n in (1, 7, 15, 16, 17, 19, 20, 21, 27, 28) if f"ind_{n}" in p_head]
    member_deprived = {r[0] for r in persons[1:] if any(r[i] == "1" for i in p_cols)}
    inc = head.index("income_per_member")

    def deprived_row(r):
        poor_income = r[inc] not in ("", "na") and float(r[inc]) < 38000
        return any(r[i] == "1" for i in hh_cols) or poor_income or r[0] in member_deprived

    deprived = [r for r in rows if deprived_row(r)]
    clean = [r for r in rows if not deprived_row(r)]
    chosen = deprived[:8] + clean[:4]
    ids = {r[0] for r in chosen}
    p_head, p_rows = persons[0], [r for r in persons[1:] if r[0] in ids]
    return [head] + chosen, [p_head] + p_rows


HH, PERSONS = pick_base()
H_HEAD, P_HEAD = HH[0], PERSONS[0]


def col(head, name):
    return head.index(name)


def csv_bytes(rows, preamble=True, newline="\n", delimiter=","):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline, delimiter=delimiter)
    if preamble:
        buf.write(NOTICE + newline)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def copy_rows(rows):
    return [list(r) for r in rows]


def registry_rows(extra_col=None, extra_val=None):
    """Welfare-registry style records for the base persons."""
    head = ["record_id", "citizen_id", "title", "first_name", "last_name", "birth_date", "sex", "village_code", "house_no"]
    if extra_col:
        head.append(extra_col)
    villages = {r[0]: r[col(H_HEAD, "village_code")] for r in HH[1:]}
    houses = {r[0]: r[col(H_HEAD, "house_no")] for r in HH[1:]}
    out = [head]
    for i, p in enumerate(PERSONS[1:]):
        rec = [
            f"r{i + 1}",
            p[col(P_HEAD, "citizen_id")],
            p[col(P_HEAD, "title")],
            p[col(P_HEAD, "first_name")],
            p[col(P_HEAD, "last_name")],
            p[col(P_HEAD, "birth_date")],
            p[col(P_HEAD, "sex")],
            villages[p[0]],
            houses[p[0]],
        ]
        if extra_col:
            rec.append(extra_val)
        out.append(rec)
    return out


MINI_CATALOGUE = """[catalogue]
id = "corpus-mini"
version = "1"
title = "{title}"
as_of = "{as_of}"
illustrative = true

[[agency]]
id = "{agency}"
name_th = "{agency_th}"
name_en = "{agency_en}"

[[agency]]
id = "moph"
name_th = "กระทรวงสาธารณสุข"
name_en = "Ministry of Public Health"

[[program]]
id = "p-living"
name_th = "{program_th}"
name_en = "Living conditions (illustrative)"
agency = "{agency}"
department = "{department}"
addresses = ["living"]
unit = "household"
eligible = "{rule}"
benefit = {{ kind = "in_kind", amount = 1000, description = "{description}" }}
unit_cost = {unit_cost}
capacity = {{ total = {capacity} }}
{budget}

[[program]]
id = "p-health"
name_th = "สุขภาพ (ตัวอย่าง)"
name_en = "Health (illustrative)"
agency = "moph"
addresses = ["health", "income", "education", "access"]
unit = "household"
eligible = "true"
benefit = {{ kind = "service" }}
unit_cost = 100
"""


def catalogue(**kw):
    d = dict(
        title="Corpus catalogue (ILLUSTRATIVE)",
        as_of="2026-10-01",
        agency="msdhs",
        agency_th="กระทรวงการพัฒนาสังคมฯ",
        agency_en="Ministry of Social Development",
        program_th="ซ่อมบ้าน (ตัวอย่าง)",
        department="Department of Social Development",
        rule="true",
        description="materials",
        unit_cost=1000,
        capacity=100,
        budget="budget = 50000",
    )
    d.update(kw)
    return MINI_CATALOGUE.format(**d).encode("utf-8")


CASES = []


def case(id, cls, why, files, args, exit, stderr=None, expect=None, reveal=False):
    assert not any(c["id"] == id for c in CASES), id
    CASES.append(dict(id=id, cls=cls, why=why, files=files, args=args, exit=exit, stderr=stderr, expect=expect or {},
                      reveal=reveal))


def base_files(hh=None, persons=None, **more):
    files = {
        "households.csv": csv_bytes(hh if hh is not None else HH),
        "persons.csv": csv_bytes(persons if persons is not None else PERSONS),
    }
    files.update(more)
    return files


INGEST = ["ingest", "--households", "{case}/households.csv", "--persons", "{case}/persons.csv", "--out", "{out}", "--quiet"]
RUN = ["run", "{case}", "--out", "{out}", "--quiet"]


def with_person_value(column, values):
    """Persons with `values` written into `column` of the first len(values) persons."""
    rows = copy_rows(PERSONS)
    c = col(P_HEAD, column)
    for i, v in enumerate(values):
        rows[1 + i][c] = v
    return rows


def with_household_value(column, values):
    rows = copy_rows(HH)
    c = col(H_HEAD, column)
    for i, v in enumerate(values):
        rows[1 + i][c] = v
    return rows


# ---------------------------------------------------------------------------------------------
# Dates: byte slicing, wrapping, ranges (each once a panic or a silently wrong value)

for cid, values, n in [
    ("date-euro-sign", ["12€678"], 1),
    ("date-euro-sign-8-bytes", ["12345€"], 1),
    ("date-month-259", ["15/259/2530"], 1),
    ("date-day-271", ["271/03/2530"], 1),
    ("date-iso-wide-fields", ["2026-0258-0001"], 1),
    ("date-thai-year-too-long", ["๑๕ มี.ค. ๒๕๓๐๐"], 1),
    ("date-feb-30", ["30/02/2530"], 1),
    ("date-year-zero", ["0000-01-01"], 1),
]:
    case(cid, "date", f"birth dates {values} are rejected as bad_date, never wrapped into range",
         base_files(persons=with_person_value("birth_date", values)), INGEST, 0,
         expect={"persons_rejected": n, "persons_reason": "bad_date"})

case("date-in-the-future", "date", "a birth date after the survey is an impossible age",
     base_files(persons=with_person_value("birth_date", ["2099-01-01"])), INGEST, 0,
     expect={"persons_rejected": 1, "persons_reason": "impossible_age"})

case("survey-year-100", "options", "--survey-year 100 is refused before reading (was an underflow panic)",
     base_files(hh=[[c for i, c in enumerate(r) if i != col(H_HEAD, "survey_year")] for r in HH]),
     INGEST + ["--survey-year", "100"], 1, stderr="survey year")

case("survey-year-column-bad", "date", "survey years 60 and 3000 are not years; ๒๕๖๐ is",
     base_files(hh=with_household_value("survey_year", ["60", "3000", "๒๕๖๐"])), INGEST, 0,
     expect={"households_rejected": 2, "households_reason": "bad_year"})

# ---------------------------------------------------------------------------------------------
# Encodings

def tis(text):
    return text.encode("cp874")


def persons_mixed(rows_tis):
    """Persons CSV in UTF-8 with the rows at `rows_tis` (1-based data rows) in TIS-620."""
    lines = [NOTICE]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(PERSONS)
    lines += buf.getvalue().splitlines()
    out = []
    for i, l in enumerate(lines):
        data_row = i - 1
        out.append(tis(l) if data_row in rows_tis else l.encode("utf-8"))
    return b"\n".join(out) + b"\n"


case("tis620-rows-in-utf8-file", "encoding",
     "three TIS-620 rows in a UTF-8 file are rejected as bad_encoding; the other names stay UTF-8 (were all turned to mojibake)",
     base_files(**{"persons.csv": persons_mixed({1, 2, 3})}), INGEST, 0,
     expect={"persons_rejected": 3, "persons_reason": "bad_encoding", "persons_encoding": "utf-8"})


def persons_tis_with_utf8(rows_utf8):
    buf = io.StringIO()
    buf.write(NOTICE + "\n")
    csv.writer(buf, lineterminator="\n").writerows(PERSONS)
    out = []
    for i, l in enumerate(buf.getvalue().splitlines()):
        out.append(l.encode("utf-8") if (i - 1) in rows_utf8 else tis(l))
    return b"\n".join(out) + b"\n"


case("utf8-rows-in-tis620-file", "encoding",
     "two UTF-8 rows in a TIS-620 file are rejected as bad_encoding, not decoded as mojibake",
     base_files(**{"persons.csv": persons_tis_with_utf8({1, 2})}), INGEST, 0,
     expect={"persons_rejected": 2, "persons_reason": "bad_encoding", "persons_encoding": "tis-620"})

case("all-tis620", "encoding", "a TIS-620 file is read whole as TIS-620",
     base_files(**{"persons.csv": persons_tis_with_utf8(set())}), INGEST, 0,
     expect={"persons_rejected": 0, "persons_encoding": "tis-620"})

case("utf16-with-bom", "encoding", "UTF-16 is named as such (was reported as a missing column)",
     base_files(**{"households.csv": csv_bytes(HH).decode("utf-8").encode("utf-16")}), INGEST, 1, stderr="UTF-16")

case("utf16-without-bom", "encoding", "UTF-16 without a byte-order mark: NUL bytes, named",
     base_files(**{"households.csv": csv_bytes(HH).decode("utf-8").encode("utf-16-le")}), INGEST, 1, stderr="NUL")

case("bom-and-preamble", "encoding", "a byte-order mark before the # preamble",
     base_files(**{"households.csv": b"\xef\xbb\xbf" + csv_bytes(HH)}), INGEST, 0, expect={"households_rejected": 0})

case("cr-only-with-preamble", "structure", "old-Mac CR line endings with a # preamble (was reported empty)",
     base_files(**{"households.csv": csv_bytes(HH, newline="\r"), "persons.csv": csv_bytes(PERSONS, newline="\r")}),
     INGEST, 0, expect={"households_rejected": 0, "persons_rejected": 0, "households_input": len(HH) - 1})

case("crlf", "structure", "CRLF line endings",
     base_files(**{"households.csv": csv_bytes(HH, newline="\r\n")}), INGEST, 0, expect={"households_rejected": 0})

bad_bytes = csv_bytes(with_person_value("first_name", ["NAME_A", "NAME_B"]))
bad_bytes = bad_bytes.replace(b"NAME_A", b"\xff\xfe").replace(b"NAME_B", b"\xc0\xaf")
case("invalid-utf8-bytes", "encoding", "a stray 0xFF and an overlong UTF-8 sequence in otherwise UTF-8 text",
     base_files(**{"persons.csv": bad_bytes}), INGEST, 0,
     expect={"persons_rejected": 2, "persons_reason": "bad_encoding"})

case("zero-width-in-names", "encoding", "zero-width spaces and joiners inside names are text, accepted",
     base_files(persons=with_person_value("first_name", ["สม\u200bชาย", "\u200dมาลี"])), INGEST, 0,
     expect={"persons_rejected": 0})

case("nul-in-header", "encoding", "a NUL byte in the header: not text",
     base_files(**{"households.csv": csv_bytes(HH).replace(b"village_code", b"village\x00code")}), INGEST, 1, stderr="NUL")

# ---------------------------------------------------------------------------------------------
# CSV structure

case("empty-file", "structure", "a 0-byte households file", base_files(**{"households.csv": b""}), INGEST, 1, stderr="empty")
case("preamble-only", "structure", "only # lines, no header", base_files(**{"households.csv": (NOTICE + "\n").encode()}),
     INGEST, 1, stderr="no header")
case("header-only", "structure", "a households file with a header and no rows: every person has no household",
     base_files(hh=[H_HEAD]), INGEST, 0, expect={"households_input": 0, "persons_reason": "person_without_household"})

ragged = copy_rows(HH)
ragged[1] = ragged[1] + ["extra"]
ragged[2] = ragged[2][:-3]
case("ragged-rows", "structure", "one row too long, one too short", base_files(hh=ragged), INGEST, 0,
     expect={"households_rejected": 2, "households_reason": "field_count"})

unterminated = csv_bytes(HH) + b'9999999999999,"4001020101,unterminated\n'
case("unterminated-quote", "structure", "a quote left open to the end of the file",
     base_files(**{"households.csv": unterminated}), INGEST, 0, expect={"households_rejected": 1})

# A quote opened by mistake in the middle of a file would take in every line after it as one
# field of one row: refused, naming the line, rather than the rest of the file counted nowhere.
mid = csv_bytes(HH).split(b"\n")
mid[4] = mid[4].replace(b",", b',"', 1)
case("unterminated-quote-mid-file", "structure", "a quote left open on the third row takes in the rows after it",
     base_files(**{"households.csv": b"\n".join(mid)}), INGEST, 1, stderr="line 5: a quote opened in a field is never closed")
mid_crlf = csv_bytes(PERSONS, newline="\r\n").split(b"\r\n")
mid_crlf[-4] = mid_crlf[-4].replace(b",", b',"', 1)
case("unterminated-quote-crlf", "structure", "a quote left open two rows before the end of a CRLF file",
     base_files(**{"persons.csv": b"\r\n".join(mid_crlf)}), INGEST, 1, stderr="the 2 line(s) after it")

quoted = with_household_value("house_no", ["12/3\nหมู่ 4", "=1+1"])
case("quoted-newline-in-field", "structure", "a house number with a line break inside quotes",
     base_files(hh=quoted), INGEST, 0, expect={"households_rejected": 0})

case("semicolon-delimiter", "structure", "semicolon-separated",
     base_files(**{"households.csv": csv_bytes(HH, delimiter=";")}), INGEST, 0, expect={"households_rejected": 0})
case("tab-delimiter", "structure", "tab-separated",
     base_files(**{"persons.csv": csv_bytes(PERSONS, delimiter="\t")}), INGEST, 0, expect={"persons_rejected": 0})

dup = [r + [r[col(H_HEAD, "village_code")]] for r in HH]
dup[0][-1] = "village_code"
case("duplicate-header", "structure", "two village_code columns", base_files(hh=dup), INGEST, 1, stderr="two columns")

case("missing-required-column", "structure", "no household_id column",
     base_files(hh=[r[1:] for r in HH]), INGEST, 1, stderr="household_id")

blank = csv_bytes(HH).replace(b"\n", b"\n\n")
case("blank-lines", "structure", "blank lines between rows are not records",
     base_files(**{"households.csv": blank}), INGEST, 0, expect={"households_input": len(HH) - 1, "households_rejected": 0})

case("header-names-an-id", "leak", "a header cell holding a citizen ID (it is ignored; it must not reach the report)",
     base_files(hh=[r + ["x"] for r in HH[:1]] and [HH[0] + [CANARY]] + [r + ["x"] for r in HH[1:]]), INGEST, 0,
     expect={"households_rejected": 0})

wide = [r + [f"extra{i}" for i in range(3000)] for r in HH[:1]] + [r + ["0"] * 3000 for r in HH[1:]]
case("very-wide-header", "structure", "3,000 unknown columns are ignored", base_files(hh=wide), INGEST, 0,
     expect={"households_rejected": 0})

case("huge-field", "structure", "a 1 MB given name",
     base_files(persons=with_person_value("first_name", ["ก" * 350_000])), INGEST, 0, expect={"persons_rejected": 0})

# ---------------------------------------------------------------------------------------------
# Values

case("household-id-forms", "value", "household IDs 1.5, -3, 1e5 and 19 digits are not IDs",
     base_files(hh=with_household_value("household_id", ["1.5", "-3", "1e5", "1234567890123456789"])), INGEST, 0,
     expect={"households_rejected": 4, "households_reason": "bad_household_id"})

case("village-code-forms", "value", "letters, 9 digits, province 99",
     base_files(hh=with_household_value("village_code", ["40010201AB", "400102010", "9901020101"])), INGEST, 0,
     expect={"households_rejected": 3})

case("status-forms", "value", "statuses 2, yes, 1.5 and NaN are rejected; 0.0, 1.00 and ๑ are statuses",
     base_files(hh=with_household_value("ind_4", ["2", "yes", "1.5", "NaN", "0.0", "1.00", "๑"])), INGEST, 0,
     expect={"households_rejected": 4, "households_reason": "bad_status"})

case("stata-decimal-statuses", "value", "a Stata/pandas export writes every 0/1 as 0.0/1.0",
     base_files(hh=[HH[0]] + [[(v + ".0") if (H_HEAD[i].startswith("ind_") and v in ("0", "1")) else v for i, v in enumerate(r)] for r in HH[1:]]),
     INGEST, 0, expect={"households_rejected": 0})

case("citizen-id-forms", "value",
     "dashes and Thai digits are IDs (the same one twice: a duplicate); 12 digits and a bad check digit are not",
     base_files(persons=with_person_value("citizen_id", [CANARY_DASHED, CANARY.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")), "110170023050", CANARY[:-1] + "4"])),
     INGEST, 0, expect={"persons_rejected": 3})

dups = copy_rows(HH)
dups.append(list(dups[1]))
pdups = copy_rows(PERSONS)
pdups.append(list(pdups[1]))
case("duplicates", "value", "a repeated household row and a repeated person", base_files(hh=dups, persons=pdups), INGEST, 0,
     expect={"households_reason": "duplicate_household", "persons_reason": "duplicate_person"})

def move_to_province_95(row):
    """Moves a household row to a village of province 95 (one of the samples'); its house ID,
    which names province 40, is left out."""
    row[col(H_HEAD, "village_code")] = "9501020401"
    row[col(H_HEAD, "house_id")] = ""


# A citizen ID in two provinces whose first holder (in file order) lives in the later province:
# the household of the first person moves to a village of province 95 (one of the samples'), and
# a person of a province-40 household further down gets that person's ID. A run partitioned by
# province (a national extract's default) reads province 40's wave first and must still keep the
# first holder in file order and reject the later one, as a whole run does.
far_hh = copy_rows(HH)
far_p = copy_rows(PERSONS)
cid, phh = col(P_HEAD, "citizen_id"), col(P_HEAD, "household_id")
first = far_p[1]
assert first[cid]
for r in far_hh[1:]:
    if r[col(H_HEAD, "household_id")] == first[phh]:
        move_to_province_95(r)
later = next(r for r in far_p[1:] if r[phh] != first[phh] and r[cid])
later[cid] = first[cid]
case("citizen-id-across-provinces", "value",
     "a citizen ID held in provinces 95 and 40, the first holder in file order in 95",
     base_files(hh=far_hh, persons=far_p), INGEST, 0,
     expect={"persons_rejected": 1, "persons_reason": "duplicate_person", "households_rejected": 0})

# A household key whose first row names no village (rejected) and whose second row is whole
# (accepted): a partitioned run reads both with the rows of no province, in its first wave, and
# the household's persons too. One of them, late in the persons file, holds the citizen ID of a
# person earlier in the file (province 40, a later wave): the earlier holder is kept, as a whole
# run keeps it.
twice_hh = copy_rows(HH)
k_row = copy_rows(HH)[-1]
k = k_row[col(H_HEAD, "household_id")]
no_village = list(k_row)
no_village[col(H_HEAD, "village_code")] = ""
twice_hh.insert(len(twice_hh) - 1, no_village)
late_p = copy_rows(PERSONS)
cid, phh = col(P_HEAD, "citizen_id"), col(P_HEAD, "household_id")
k_people = [i for i, r in enumerate(late_p) if i > 0 and r[phh] == k and r[cid]]
earlier = next(i for i, r in enumerate(late_p) if i > 0 and r[phh] != k and r[cid])
assert k_people and earlier < k_people[-1]
late_p[k_people[-1]][cid] = late_p[earlier][cid]
case("citizen-id-held-by-a-household-of-no-province-first", "value",
     "a household key whose first row has no village; a later member holds an earlier person's ID",
     base_files(hh=twice_hh, persons=late_p), INGEST, 0,
     expect={"persons_rejected": 1, "persons_reason": "duplicate_person", "households_rejected": 1})

# A household key on two rows in two provinces, the first rejected (a survey year that is not
# one): a whole run accepts the second, in province 95; a partitioned run routes it where the
# key's first row went (province 40) and must write the same outputs.
moved_hh = copy_rows(HH)
k_row = copy_rows(HH)[-1]
bad_first = list(k_row)
bad_first[col(H_HEAD, "survey_year")] = "soon"
move_to_province_95(k_row)
moved_hh[-1] = bad_first
moved_hh.append(k_row)
case("household-key-in-two-provinces-first-rejected", "value",
     "a household key in provinces 40 (rejected: bad survey year) and 95 (accepted)",
     base_files(hh=moved_hh), INGEST, 0, expect={"households_rejected": 1, "households_reason": "bad_year"})

# --strict: a bad person in province 40 (the first wave) and a bad household in province 95 (the
# last): a whole run reads every household first and stops at the household; so must a run
# partitioned by province, though its first wave meets the person first.
late_hh = copy_rows(HH)
move_to_province_95(late_hh[-1])
late_hh[-1][col(H_HEAD, "survey_year")] = "year"
early_p = copy_rows(PERSONS)
early_p[1][col(P_HEAD, "sex")] = "9"
assert early_p[1][col(P_HEAD, "household_id")] != late_hh[-1][col(H_HEAD, "household_id")]
case("strict-household-error-in-a-later-province", "value",
     "--strict with a bad person in province 40 and a bad household in province 95",
     base_files(hh=late_hh, persons=early_p), INGEST + ["--strict"], 1, stderr="survey_year")

case("age-forms", "value", "ages 121, -1 and abc",
     base_files(persons=with_person_value("age", ["121", "-1", "abc"])), INGEST, 0, expect={"persons_rejected": 3})

case("sex-relation-flags", "value", "sex 3, relation 9 and a disabled flag 'maybe'",
     base_files(persons=with_person_value("sex", ["3"])[:1] + with_person_value("sex", ["3"])[1:]), INGEST, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_sex"})

p = with_person_value("relation", ["9"])
p[2][col(P_HEAD, "disabled")] = "maybe"
case("relation-and-flag", "value", "relation 9 and a disabled flag 'maybe'", base_files(persons=p), INGEST, 0,
     expect={"persons_rejected": 2})

case("members-income-forms", "value", "members 70000, income 1e400 and -5",
     base_files(hh=with_household_value("members", ["70000"])[:1] + with_household_value("income_per_member", ["", "1e400", "-5"])[1:]),
     INGEST, 0, expect={"households_reason": "bad_number"})

orph = copy_rows(PERSONS)
orph[1][0] = "9999999999999"
case("person-without-household", "value", "a person whose household is not in the households file",
     base_files(persons=orph), INGEST, 0, expect={"persons_reason": "person_without_household"})

formula_data = with_person_value("first_name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "@SUM(1)", "-2+3", "\t=1", "\r=1"])
formula_data[7][col(P_HEAD, "age")] = "=1+1"  # a rejected row with a formula: the rejects file is opened in spreadsheets too
case("formula-in-data", "formula",
     "cells starting with = + - @ tab or CR in names and a rejected row (a bare CR also ends a record: two ragged halves)",
     base_files(persons=formula_data, hh=with_household_value("house_no", ["=1+1", "-1-1"]),
                **{"catalogue.toml": catalogue()}), RUN, 0, expect={"persons_rejected": 3})
case("formula-in-data-revealed", "formula", "the same with --reveal-ids: names reach the person work lists, neutralised",
     base_files(persons=formula_data, hh=with_household_value("house_no", ["=1+1", "-1-1"]),
                **{"catalogue.toml": catalogue().replace(b'unit = "household"\neligible = "true"\nbenefit = { kind = "service" }',
                                                         b'unit = "person"\neligible = "true"\nbenefit = { kind = "service" }')}),
     RUN + ["--reveal-ids"], 0, expect={"persons_rejected": 3}, reveal=True)

# ---------------------------------------------------------------------------------------------
# Parquet


def parquet_bytes(table):
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def rows_to_table(rows, types=None):
    head, data = rows[0], rows[1:]
    cols = {}
    for i, h in enumerate(head):
        vals = [r[i] if i < len(r) else "" for r in data]
        t = (types or {}).get(h)
        if t is None:
            cols[h] = pa.array([v if v != "" else None for v in vals], pa.string())
        else:
            cols[h] = t(vals)
    return pa.table(cols)


def dates_with(first_days):
    def make(vals):
        import datetime
        out = []
        for i, v in enumerate(vals):
            if i < len(first_days):
                out.append(first_days[i])
            elif v:
                out.append((datetime.date.fromisoformat(v) - datetime.date(1970, 1, 1)).days)
            else:
                out.append(None)
        return pa.array(out, pa.date32())
    return make


pfiles = lambda ptable, htable=None: {
    "households.parquet": parquet_bytes(htable if htable is not None else rows_to_table(HH)),
    "persons.parquet": parquet_bytes(ptable),
}
INGEST_PQ = ["ingest", "--households", "{case}/households.parquet", "--persons", "{case}/persons.parquet", "--out", "{out}", "--quiet"]

case("parquet-date32-max", "parquet", "a date32 of i32::MAX (was an overflow panic)",
     pfiles(rows_to_table(PERSONS, {"birth_date": dates_with([2**31 - 1])})), INGEST_PQ, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_date"})
case("parquet-date32-min", "parquet", "a date32 of i32::MIN",
     pfiles(rows_to_table(PERSONS, {"birth_date": dates_with([-2**31])})), INGEST_PQ, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_date"})
case("parquet-year-67516", "parquet", "year 67516 (was read as 1980)",
     pfiles(rows_to_table(PERSONS, {"birth_date": dates_with([23_940_000])})), INGEST_PQ, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_date"})

import datetime as _dt
ts = lambda vals: pa.array([_dt.datetime.fromisoformat(v) if v else None for v in vals], pa.timestamp("ns"))
case("parquet-timestamp-dates", "parquet", "birth dates as pandas timestamps",
     pfiles(rows_to_table(PERSONS, {"birth_date": ts})), INGEST_PQ, 0, expect={"persons_rejected": 0})

int8 = lambda vals: pa.array([None if v in ("", "na") else int(v) for v in vals], pa.int8())
ind_types = {h: int8 for h in H_HEAD if h.startswith("ind_")}
case("parquet-int8-statuses", "parquet", "statuses as int8 (failed with a polars message)",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, ind_types)), INGEST_PQ, 0, expect={"households_rejected": 0})

f64 = lambda vals: pa.array([float("nan") if v == "" else float(v) for v in vals], pa.float64())
case("parquet-float-statuses", "parquet", "statuses as doubles 0.0/1.0 (and NaN for missing)",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {h: f64 for h in H_HEAD if h.startswith("ind_")})), INGEST_PQ, 0,
     expect={"households_rejected": 0})

dec = lambda vals: pa.array([int(v) for v in vals], pa.decimal128(20, 0))
case("parquet-decimal-ids", "parquet", "household IDs as decimal(20,0), as Spark writes unsigned ids",
     pfiles(rows_to_table(PERSONS, {"household_id": dec}), rows_to_table(HH, {"household_id": dec})), INGEST_PQ, 0,
     expect={"households_rejected": 0, "persons_rejected": 0})

u64 = lambda vals: pa.array([2**64 - 1] + [int(v) for v in vals[1:]], pa.uint64())
case("parquet-uint64-huge-id", "parquet", "a uint64 household ID above i64::MAX is not an ID (never null, never wrapped)",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {"household_id": u64})), INGEST_PQ, 0,
     expect={"households_rejected": 1, "households_reason": "bad_household_id"})

lst = lambda vals: pa.array([[1] if v == "1" else [0] for v in vals], pa.list_(pa.int64()))
case("parquet-list-status", "parquet", "a status column of lists: an error naming file and column",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {"ind_4": lst})), INGEST_PQ, 1, stderr="ind_4")
hh_extra = rows_to_table(HH).append_column("notes", pa.array([[1, 2]] * (len(HH) - 1), pa.list_(pa.int64())))
case("parquet-list-unused", "parquet", "an unused list column is ignored",
     pfiles(rows_to_table(PERSONS), hh_extra), INGEST_PQ, 0, expect={"households_rejected": 0})
st = lambda vals: pa.array([{"v": v} for v in vals], pa.struct([("v", pa.string())]))
case("parquet-struct-status", "parquet", "a status column of structs",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {"ind_4": st})), INGEST_PQ, 1, stderr="households.parquet")
dictionary = lambda vals: pa.array(vals, pa.string()).dictionary_encode()
case("parquet-dictionary-village", "parquet", "village codes as a dictionary (pandas categorical) column",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {"village_code": dictionary})), INGEST_PQ, 0,
     expect={"households_rejected": 0})
mp = lambda vals: pa.array([[("k", v)] for v in vals], pa.map_(pa.string(), pa.string()))
case("parquet-map-unused", "parquet", "an unused map column is ignored (struct and map types panicked inside polars)",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH).append_column("m", mp(["x"] * (len(HH) - 1)))), INGEST_PQ, 0,
     expect={"households_rejected": 0})
case("parquet-struct-unused", "parquet", "an unused struct column is ignored",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH).append_column("s", st(["x"] * (len(HH) - 1)))), INGEST_PQ, 0,
     expect={"households_rejected": 0})
binary = lambda vals: pa.array([v.encode() for v in vals], pa.binary())
case("parquet-binary-id", "parquet", "household IDs as binary",
     pfiles(rows_to_table(PERSONS), rows_to_table(HH, {"household_id": binary})), INGEST_PQ, 1, stderr="household_id")

good_pq = parquet_bytes(rows_to_table(HH))
case("parquet-truncated", "parquet", "a Parquet file cut in half: the error names the file",
     {"households.parquet": good_pq[: len(good_pq) // 2], "persons.parquet": parquet_bytes(rows_to_table(PERSONS))},
     INGEST_PQ, 1, stderr="households.parquet")
case("parquet-not-parquet", "parquet", "CSV text in a .parquet file",
     {"households.parquet": csv_bytes(HH), "persons.parquet": parquet_bytes(rows_to_table(PERSONS))},
     INGEST_PQ, 1, stderr="households.parquet")
case("parquet-zero-rows", "parquet", "a Parquet households file with no rows",
     pfiles(rows_to_table(PERSONS), rows_to_table([H_HEAD])), INGEST_PQ, 0, expect={"households_input": 0})


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def patch_num_rows(data, rows, new_rows, which):
    """Rewrites the thrift-compact `num_rows` field(s) (i64, zigzag varint) of a Parquet footer:
    `which` = 'file' (FileMetaData field 3) or 'both' (and the row group's field 3)."""
    meta_len = struct.unpack("<I", data[-8:-4])[0]
    meta = data[-8 - meta_len:-8]
    old = varint(rows * 2)
    new = varint(new_rows * 2)
    # Field header 0x16: field id +1 from the previous, type i64 (6). FileMetaData.num_rows comes
    # right after the schema list; RowGroup.num_rows after total_byte_size (also i64: delta 1).
    pat = b"\x16" + old
    hits = []
    start = 0
    while True:
        i = meta.find(pat, start)
        if i < 0:
            break
        hits.append(i)
        start = i + 1
    assert hits, "num_rows field not found"
    targets = hits[:1] if which == "file" else hits
    for i in reversed(targets):
        meta = meta[: i + 1] + new + meta[i + 1 + len(old):]
    body = data[: -8 - meta_len]
    return body + meta + struct.pack("<I", len(meta)) + b"PAR1"


n_hh = len(HH) - 1
footer_lie = patch_num_rows(good_pq, n_hh, 2**40, "file")
case("parquet-footer-2e40-rows", "resources",
     "a footer claiming 2^40 rows (the reservation trusted it: 8 TiB) is a damaged file, named",
     {"households.parquet": footer_lie, "persons.parquet": parquet_bytes(rows_to_table(PERSONS))}, INGEST_PQ, 1,
     stderr="households.parquet")
both_lie = patch_num_rows(good_pq, n_hh, 2**40, "both")
case("parquet-row-group-2e40-rows", "resources",
     "footer and row group both claiming 2^40 rows: nothing reserved from the claim, the short read is named",
     {"households.parquet": both_lie, "persons.parquet": parquet_bytes(rows_to_table(PERSONS))}, INGEST_PQ, 1,
     stderr="households.parquet")

# Inputs cargo fuzz found (scripts/fuzz-found/): each must end in an error naming the file.
FOUND = os.path.join(ROOT, "scripts", "fuzz-found")
for name in sorted(os.listdir(FOUND)):
    data = open(os.path.join(FOUND, name), "rb").read()
    if name.endswith(".parquet"):
        case("fuzz-" + name.rsplit(".", 1)[0], "fuzz", f"found by cargo fuzz: {name} (polars panicked or aborted on it)",
             {"households.parquet": data, "persons.parquet": parquet_bytes(rows_to_table(PERSONS))}, INGEST_PQ, 1,
             stderr="households.parquet")

# ---------------------------------------------------------------------------------------------
# Excel


def xlsx_bytes(rows, date_col=None, dates=None, extra=None):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([NOTICE])
    for r in rows:
        ws.append(r)
    if date_col is not None:
        c = rows[0].index(date_col) + 1
        for i, v in enumerate(dates):
            cell = ws.cell(row=3 + i, column=c)
            cell.value = v
            cell.number_format = "yyyy-mm-dd"
    if extra:
        extra(ws)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


INGEST_XL = ["ingest", "--households", "{case}/households.xlsx", "--persons", "{case}/persons.xlsx", "--out", "{out}", "--quiet"]
xfiles = lambda h, p: {"households.xlsx": h, "persons.xlsx": p}

case("xlsx-date-serial-1e10", "excel", "a date serial of 1e10 (was an overflow panic)",
     xfiles(xlsx_bytes(HH), xlsx_bytes(PERSONS, "birth_date", [1e10])), INGEST_XL, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_date"})
case("xlsx-date-serial-negative", "excel", "a date serial of -1e10",
     xfiles(xlsx_bytes(HH), xlsx_bytes(PERSONS, "birth_date", [-1e10])), INGEST_XL, 0,
     expect={"persons_rejected": 1, "persons_reason": "bad_date"})


def far_cell(ws):
    ws["XFD1048576"] = "x"


case("xlsx-cell-at-xfd1048576", "resources",
     "one cell at XFD1048576 (calamine's dense range: 512 GiB) is one ragged row",
     xfiles(xlsx_bytes(HH, extra=far_cell), xlsx_bytes(PERSONS)), INGEST_XL, 0,
     expect={"households_rejected": 1, "households_reason": "field_count"})
case("xlsx-cell-limit", "resources", "a sheet larger than --max-xlsx-cells",
     xfiles(xlsx_bytes(HH), xlsx_bytes(PERSONS)), INGEST_XL + ["--max-xlsx-cells", "50"], 1, stderr="max-xlsx-cells")


def bomb(xlsx):
    """The same workbook with 40 MB of whitespace inside its sheet XML (compresses to ~40 kB)."""
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<sheetData>" + b" " * 40_000_000, 1)
            z.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return out.getvalue()


case("xlsx-decompression-bomb", "resources", "a sheet that decompresses past --max-xlsx-bytes",
     xfiles(bomb(xlsx_bytes(HH)), xlsx_bytes(PERSONS)), INGEST_XL + ["--max-xlsx-bytes", "10000000"], 1,
     stderr="max-xlsx-bytes")
case("xlsx-not-a-zip", "excel", "CSV text in a .xlsx file: named", xfiles(csv_bytes(HH), xlsx_bytes(PERSONS)), INGEST_XL, 1,
     stderr="households.xlsx")
case("xlsx-missing-sheet", "excel", "--sheet names a sheet that is not there", xfiles(xlsx_bytes(HH), xlsx_bytes(PERSONS)),
     INGEST_XL + ["--sheet", "nope"], 1, stderr="nope")


def empty_wb():
    buf = io.BytesIO()
    openpyxl.Workbook().save(buf)
    return buf.getvalue()


case("xlsx-empty-sheet", "excel", "a workbook with one empty sheet", xfiles(empty_wb(), xlsx_bytes(PERSONS)), INGEST_XL, 1,
     stderr="household_id")


def formulas(ws):
    ws["A30"] = "=1/0"


case("xlsx-formula-without-value", "excel", "a formula cell saved without a cached value is empty (no row)",
     xfiles(xlsx_bytes(HH, extra=formulas), xlsx_bytes(PERSONS)), INGEST_XL, 0, expect={"households_rejected": 0})

# ---------------------------------------------------------------------------------------------
# Catalogues and rules

RUN_CAT = RUN


def run_files(cat, **more):
    return base_files(**{"catalogue.toml": cat}, **more)


case("rule-200k-parentheses", "resources", "200,000 nested parentheses (was a stack overflow)",
     run_files(catalogue(rule="(" * 200_000 + "target" + ")" * 200_000)), RUN, 1, stderr="max-rule-depth")
case("rule-300k-not", "resources", "300,000 nested not (was a stack overflow)",
     run_files(catalogue(rule="not " * 300_000 + "target")), RUN, 1, stderr="max-rule-depth")
case("rule-depth-option", "resources", "--max-rule-depth lowers the limit",
     run_files(catalogue(rule="((((((target))))))")), RUN + ["--max-rule-depth", "3"], 1, stderr="max-rule-depth")
case("rule-100k-or", "resources", "a flat rule of 100,001 alternatives is fine",
     run_files(catalogue(rule="target or " * 100_000 + "target")), RUN, 0)
case("plan-decisions-option", "resources",
     "--max-plan-decisions limits the places given and declined a plan decides on (a catalogue of many programs "
     "reaching every household decides on programs times households)",
     run_files(catalogue()), RUN + ["--max-plan-decisions", "1"], 1, stderr="max-plan-decisions")
case("rule-score-tiny-constant", "arithmetic", "score >= 1/3e38 (was an unchecked multiplication)",
     run_files(catalogue(rule="score >= 1/300000000000000000000000000000000000000")), RUN, 0)
case("rule-score-u128-max", "arithmetic", "score <= u128::MAX",
     run_files(catalogue(rule="score <= 340282366920938463463374607431768211455")), RUN, 0)
case("rule-score-decimal-overflow", "arithmetic", "a decimal constant past u128 is an error, not a wrap",
     run_files(catalogue(rule="score >= 340282366920938463463374607431768211455.9")), RUN, 1, stderr="score")
case("rule-syntax-error", "catalogue", "an unknown field in a rule points at its column",
     run_files(catalogue(rule="target and agee >= 60")), RUN, 1, stderr="column 12")
case("unit-cost-i64-max", "arithmetic", "unit_cost = i64::MAX (was unchecked arithmetic)",
     run_files(catalogue(unit_cost=9223372036854775807)), RUN, 1, stderr="baht")
case("budget-huge", "arithmetic", "a budget of 10^15 baht", run_files(catalogue(budget="budget = 1000000000000000")), RUN, 1,
     stderr="baht")
case("capacity-overflow", "catalogue", "a capacity past u32", run_files(catalogue(capacity=2**32)), RUN, 1, stderr="catalogue.toml")
case("capacity-negative", "catalogue", "a negative capacity", run_files(catalogue(capacity=-1)), RUN, 1, stderr="catalogue.toml")
case("catalogue-as-of-euro", "date", "as_of '12€678' (was a byte-slicing panic)", run_files(catalogue(as_of="12€678")), RUN, 1,
     stderr="as_of")
case("catalogue-as-of-feb-30", "date", "as_of 2026-02-30", run_files(catalogue(as_of="2026-02-30")), RUN, 1, stderr="as_of")
case("toml-deep-nesting", "resources", "100,000 nested TOML arrays",
     run_files(("x = " + "[" * 100_000 + "]" * 100_000 + "\n").encode()), RUN, 1, stderr="catalogue.toml")
case("catalogue-not-utf8", "catalogue", "a TIS-620 catalogue", run_files(catalogue().decode().encode("cp874", "replace")), RUN, 1,
     stderr="UTF-8")
case("catalogue-title-newline", "escape", "a title with a line break would break out of the # preamble",
     run_files(catalogue(title="Catalogue\\n=cmd|' /C calc'!A0")), RUN, 1, stderr="line break")
case("catalogue-error-after-ingest", "all-or-nothing",
     "a bad catalogue is found before any output is written (was a half-filled folder)",
     run_files(catalogue(rule="no such field")), RUN, 1, stderr="rule error")
for cid, agency, why in [
    ("agency-id-dotdot", "../../../tpmap-escape", "a path that climbs out of --out"),
    ("agency-id-absolute", "/tmp/tpmap-escape", "an absolute path"),
    ("agency-id-hidden", ".hidden", "a hidden file name"),
    ("agency-id-backslash", "..\\\\x", "a Windows path"),
    ("agency-id-empty", "", "an empty id"),
    ("agency-id-dash", "-A1", "an id that reads as an option or a formula"),
]:
    case(cid, "escape", f"agency id: {why}; ids that become file names are checked when the catalogue loads",
         run_files(catalogue(agency=agency)), RUN, 1, stderr="agency id")
case("formula-in-catalogue", "formula", "formula-like program, agency and department names reach the plan CSVs neutralised",
     run_files(catalogue(program_th="=cmd|' /C calc'!A0", agency_en="@SUM(1)", department="-1+1",
                         description="+1+1")), RUN, 0)
case("plan-date-euro", "date", "--date 12€678 (a usage error)", run_files(catalogue()), RUN + ["--date", "12€678"], 2,
     stderr="date")
case("plan-date-wide-fields", "date", "--date 2026-0258-0001 (was read as 2026-02-01)", run_files(catalogue()),
     RUN + ["--date", "2026-0258-0001"], 2, stderr="date")
case("optimize-seconds-negative", "options", "--optimize-seconds=-1 (Duration panics on it)", run_files(catalogue()),
     RUN + ["--optimize", "--optimize-seconds=-1"], 1, stderr="optimize-seconds")
case("optimize-seconds-nan", "options", "--optimize-seconds NaN", run_files(catalogue()),
     RUN + ["--optimize", "--optimize-seconds", "NaN"], 1, stderr="optimize-seconds")
case("key-file-short", "options", "a 3-byte key file", run_files(catalogue(), key=b"abc"),
     RUN + ["--key-file", "{case}/key"], 1, stderr="16")
case("key-file-missing", "options", "a key file that does not exist", run_files(catalogue()),
     RUN + ["--key-file", "{case}/nope"], 1, stderr="nope")

# ---------------------------------------------------------------------------------------------
# Served lists

served = lambda rows: csv_bytes(rows, preamble=False)
first_hh = HH[1][0]
case("served-program-is-an-id", "leak", "a served list whose program column holds a citizen ID: the error hides it",
     run_files(catalogue(), **{"served.csv": served([["household_id", "program"], [first_hh, CANARY]])}), RUN, 1,
     stderr="no program")
case("served-unknown-household", "value", "a served household not in the extract",
     run_files(catalogue(), **{"served.csv": served([["household_id", "program"], ["9999999999999", "p-living"]])}), RUN, 1,
     stderr="row 1")
case("served-ragged", "structure", "a served row with three fields",
     run_files(catalogue(), **{"served.csv": served([["household_id", "program"], [first_hh, "p-living", "x"]])}), RUN, 1,
     stderr="served.csv")
case("served-list-program-is-an-id", "leak", "an agency list whose program column holds a citizen ID",
     run_files(catalogue(), **{"served_list.csv": csv_bytes(registry_rows("program", CANARY_DASHED))}), RUN, 1,
     stderr="no program")
case("welfare-registry-tis620", "encoding", "a TIS-620 welfare registry",
     run_files(catalogue(), **{"welfare_registry.csv": csv_bytes(registry_rows("validated", "true")).decode().encode("cp874")}),
     RUN, 0)
case("welfare-registry-no-name", "link", "a registry without a first_name column names the file",
     run_files(catalogue(), **{"welfare_registry.csv": csv_bytes([r[:3] for r in registry_rows()])}), RUN, 1,
     stderr="welfare_registry.csv")
case("welfare-registry-utf16", "encoding", "a UTF-16 registry",
     run_files(catalogue(), **{"welfare_registry.csv": csv_bytes(registry_rows()).decode().encode("utf-16")}), RUN, 1,
     stderr="UTF-16")

# ---------------------------------------------------------------------------------------------
# Linkage

LINK = ["link", "{case}/a.csv", "{case}/b.csv", "--out", "{out}", "--quiet"]
reg = registry_rows()
half = len(reg) // 2
link_files = lambda a=None, b=None, **more: dict(
    {"a.csv": csv_bytes(a or reg), "b.csv": csv_bytes(b or ([reg[0]] + [[f"b{i}"] + r[1:] for i, r in enumerate(reg[1:])]))},
    **more)
hashed = [reg[0]] + [["#" + r[0]] + r[1:] for r in reg[1:]]
case("link-hash-record-ids", "link", "record ids starting with # are records, not comments (were dropped)",
     link_files(a=hashed), LINK, 0, expect={"link_records": 2 * (len(reg) - 1)})
quoting = [reg[0]] + [[f'id,"{i}"\nx'] + r[1:] for i, r in enumerate(reg[1:])]
case("link-entities-quoting", "escape", "record ids with commas, quotes and line breaks: entities.csv stays well-formed",
     link_files(a=quoting), LINK, 0, expect={"link_records": 2 * (len(reg) - 1), "entities_rows": 2 * (len(reg) - 1)})
formula_ids = [reg[0]] + [[("=1+" if i % 2 else "@SUM(") + str(i)] + r[1:] for i, r in enumerate(reg[1:])]
case("link-formula-ids", "formula", "record ids that look like formulas", link_files(a=formula_ids), LINK, 0)
case("link-normalise-formula-ids", "formula", "records exported for a peer tool: formula-like ids neutralised",
     link_files(a=formula_ids), ["link-normalise", "{case}/a.csv", "{case}/b.csv", "--out", "{out}/normalised.csv"], 0)
mixed_reg = csv_bytes(reg).decode().splitlines()
mixed_reg = "\n".join(mixed_reg[:3]).encode() + b"\n" + "\n".join(mixed_reg[3:5]).encode("cp874") + b"\n" + "\n".join(
    mixed_reg[5:]).encode() + b"\n"
case("link-mixed-encoding", "encoding", "two TIS-620 records in a UTF-8 registry are counted as unreadable",
     link_files(**{"a.csv": mixed_reg}), LINK, 0, expect={"link_unreadable": 2})
case("link-no-first-name", "link", "no first_name column: the error names the file",
     link_files(a=[r[:3] for r in reg]), LINK, 1, stderr="a.csv")
case("link-empty-file", "link", "a 0-byte registry", link_files(**{"a.csv": b""}), LINK, 1, stderr="a.csv")
case("link-utf16", "encoding", "a UTF-16 registry", link_files(**{"a.csv": csv_bytes(reg).decode().encode("utf-16")}), LINK, 1,
     stderr="UTF-16")
for cid, value in [("nan", "NaN"), ("inf", "inf"), ("one", "1"), ("zero", "0"), ("negative", "-0.5")]:
    case(f"link-threshold-{cid}", "options", f"--threshold {value} is refused (NaN was taken)", link_files(),
         LINK + [f"--threshold={value}"], 1, stderr="threshold")
case("link-block-unknown-key", "options", "--block with an unknown key", link_files(), LINK + ["--block", "shoe_size"], 2,
     stderr="shoe_size")

model_ok = None  # a model is written by a first run in the harness when needed; here, hand-made bad ones
bad_models = {
    "empty-tables": {"lambda": 0.01, "m": [], "u": [], "u_random": [], "tf": True, "iterations": 1,
                     "blocking": {"rules": [["citizen_id"]], "max_block": 2000}},
    "lambda-zero": {"lambda": 0.0, "m": [[0.9, 0.05, 0.05]] * 6, "u": [[0.1, 0.1, 0.8]] * 6, "u_random": [[0.1, 0.1, 0.8]] * 6,
                    "tf": False, "iterations": 1, "blocking": {"rules": [["citizen_id"]], "max_block": 2000}},
    "wrong-levels": {"lambda": 0.01, "m": [[0.9, 0.1]] * 6, "u": [[0.1, 0.9]] * 6, "u_random": [[0.1, 0.9]] * 6, "tf": False,
                     "iterations": 1, "blocking": {"rules": [["citizen_id"]], "max_block": 2000}},
    "huge-block": {"lambda": 0.01, "m": [[0.9, 0.05, 0.05]] * 6, "u": [[0.1, 0.1, 0.8]] * 6,
                   "u_random": [[0.1, 0.1, 0.8]] * 6, "tf": False, "iterations": 1,
                   "blocking": {"rules": [["citizen_id"]], "max_block": 10**12}},
    "no-rules": {"lambda": 0.01, "m": [[0.9, 0.05, 0.05]] * 6, "u": [[0.1, 0.1, 0.8]] * 6,
                 "u_random": [[0.1, 0.1, 0.8]] * 6, "tf": False, "iterations": 1, "blocking": {"rules": [], "max_block": 2000}},
}
for name, m in bad_models.items():
    case(f"link-model-{name}", "model", f"a saved model with {name.replace('-', ' ')} is refused (empty tables panicked)",
         link_files(**{"model.json": json.dumps(m).encode()}), LINK + ["--model", "{case}/model.json"], 1, stderr="model")
case("link-model-not-json", "model", "a model file that is not JSON", link_files(**{"model.json": b"\x00\x01garbage"}),
     LINK + ["--model", "{case}/model.json"], 1, stderr="json")
case("link-model-number-out-of-range", "model", "lambda 1e999", link_files(**{"model.json": b'{"lambda": 1e999}'}),
     LINK + ["--model", "{case}/model.json"], 1, stderr="json")
truth_rows = [["source", "record_id", "person"]] + [["a", r[0], str(i)] for i, r in enumerate(reg[1:])] + [
    ["b", f"b{i}", str(i)] for i in range(len(reg) - 1)]
case("link-truth-two-columns", "link", "a truth file with two columns",
     link_files(**{"truth.csv": csv_bytes([r[:2] for r in truth_rows], preamble=False)}), LINK + ["--truth", "{case}/truth.csv"], 1,
     stderr="truth")
bad_truth = [list(r) for r in truth_rows]
bad_truth[1][2] = "abc"
case("link-truth-not-a-number", "link", "a truth file whose person is not a number",
     link_files(**{"truth.csv": csv_bytes(bad_truth, preamble=False)}), LINK + ["--truth", "{case}/truth.csv"], 1,
     stderr="person")

# ---------------------------------------------------------------------------------------------
# The Alkire-Foster entry point

units = [["area", "w", "a", "b"], ["x", "1", "1", "0"], ["x", "2", "0", "1"], ["y", "1", "1", "1"]]
spec = [["dimension", "indicator", "weight"], ["d1", "a", "1/2"], ["d2", "b", "1/2"]]
MPI = ["mpi", "--data", "{case}/units.csv", "--spec", "{case}/spec.csv", "--k", "1/2", "--areas", "area", "--out", "{out}",
       "--quiet"]
mfiles = lambda u=None, s=None: {"units.csv": csv_bytes(u or units, preamble=False), "spec.csv": csv_bytes(s or spec, preamble=False)}
case("mpi-weight-div-zero", "arithmetic", "a spec weight 1/0", mfiles(s=[spec[0], ["d1", "a", "1/0"], spec[2]]), MPI, 1,
     stderr="weight")
case("mpi-k-div-zero", "arithmetic", "--k 1/0", mfiles(), [a if a != "1/2" else "1/0" for a in MPI], 2, stderr="1/0")
wide_units = [["area"] + [f"i{j}" for j in range(64)]] + [["x"] + [str((j + k) % 2) for j in range(64)] for k in range(3)]
wide_spec = [["dimension", "indicator", "weight"]] + [[f"d{j}", f"i{j}", "1/64"] for j in range(64)]
case("mpi-64-indicators", "arithmetic", "64 indicators (1 << 64 overflowed)", mfiles(wide_units, wide_spec), MPI, 0)
case("mpi-65-indicators", "arithmetic", "65 indicators",
     mfiles([r + ["1"] for r in wide_units], wide_spec + [["d64", "area", "1/64"]]), MPI, 1, stderr="64")
case("mpi-decimal-statuses", "value", "0.0/1.0 statuses from Stata",
     mfiles([units[0]] + [[r[0], r[1]] + [v + ".0" for v in r[2:]] for r in units[1:]]), MPI, 0)
case("mpi-status-two", "value", "a status of 2 names the column and the kind of value",
     mfiles([units[0], ["x", "1", "2", "0"]] + units[2:]), MPI, 1, stderr="a number other than 0 and 1")
case("mpi-bootstrap-huge", "resources", "--bootstrap 10^11 (allocated 7 PB and aborted)", mfiles(),
     MPI + ["--bootstrap", "100000000000"], 1, stderr="bootstrap")
case("mpi-negative-weight", "value", "a negative unit weight", mfiles(), MPI + ["--weight", "area"], 1, stderr="'area'")
rounds = [units[0] + ["round", "hh"]] + [r + ["2561", f"h{i}"] for i, r in enumerate(units[1:])] + \
    [r + ["2562", f"h{i}"] for i, r in enumerate(units[1:])]
case("mpi-round-empty", "value", "an empty round names the file, row and column",
     mfiles([rounds[0]] + rounds[1:3] + [rounds[3][:4] + ["", "h2"]] + rounds[4:]), MPI + ["--round", "round"], 1,
     stderr="round is empty")
case("mpi-round-three-values", "value", "three rounds in the round column",
     mfiles(rounds + [units[1] + ["2563", "h0"]]), MPI + ["--round", "round"], 1, stderr="3 distinct values")
case("mpi-unit-id-is-a-citizen-id", "privacy", "a panel linked by citizen IDs: the ids are hashed, never written",
     mfiles([rounds[0]] + [r[:5] + ["1101700230503" if r[5] == "h0" else r[5]] for r in rounds[1:]]),
     MPI + ["--round", "round", "--unit-id", "hh"], 0)
case("mpi-years-without-rounds", "options", "--years with one round", mfiles(), MPI + ["--years", "2"], 1,
     stderr="two rounds")

# ---------------------------------------------------------------------------------------------
# Options and other commands

case("run-bootstrap-huge", "resources", "the main job with --bootstrap 10^11", base_files(), RUN + ["--bootstrap", "100000000000"], 1,
     stderr="bootstrap")
case("mask-three-digits", "options", "--mask 123", base_files(), RUN + ["--mask", "123"], 2, stderr="mask")
case("mask-all-zero", "options", "--mask 00000", base_files(), RUN + ["--mask", "00000"], 2, stderr="mask")
case("option-value-is-an-id", "leak", "an option value holding a citizen ID: the usage error hides it", base_files(),
     RUN + ["--mask", CANARY], 2, stderr="mask")
case("tpmap-year-100", "options", "--tpmap-year 100", base_files(), RUN + ["--tpmap-year", "100"], 1, stderr="year")
case("edition-unknown", "options", "--edition names no edition", base_files(), RUN + ["--edition", "bmn-1999"], 1, stderr="bmn-1999")
case("edition-bad-toml", "options", "--edition a file that is not an edition", base_files(**{"edition.toml": b"id = [\n"}),
     RUN + ["--edition", "{case}/edition.toml"], 1, stderr="edition")
case("encoding-unknown", "options", "--encoding utf16 is a usage error", base_files(), RUN + ["--encoding", "utf16"], 2)
case("unknown-subcommand", "options", "a command that does not exist", {}, ["frobnicate"], 2)
case("synth-too-many", "resources", "synth --households 10^12", {}, ["synth", "--households", "1000000000000", "--out", "{out}",
                                                                     "--quiet"], 1, stderr="households")
case("synth-survey-year-100", "options", "synth --survey-year 100 (was an underflow)", {},
     ["synth", "--households", "10", "--survey-year", "100", "--out", "{out}", "--quiet"], 1, stderr="survey year")
case("link-bench-share-two", "options", "link-bench --welfare-share 2", {},
     ["link-bench", "--households", "10", "--welfare-share", "2", "--out", "{out}"], 1, stderr="share")
case("reconcile-year-is-a-path", "escape", "reconcile --year ../x builds no path from it", {},
     ["reconcile", "{case}", "--year", "../x"], 1, stderr="year")
case("reconcile-mask-bad", "options", "reconcile --mask 2", {}, ["reconcile", "{case}", "--mask", "2"], 2, stderr="mask")


# ---------------------------------------------------------------------------------------------


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)


def main():
    if os.path.isdir(OUT):
        for name in os.listdir(OUT):
            p = os.path.join(OUT, name)
            if os.path.isdir(p):
                shutil.rmtree(p)
    os.makedirs(OUT, exist_ok=True)
    lines = [
        "# tpmap's dirty-input corpus: written by scripts/make_corpus.py (do not edit by hand).",
        "# Each case runs `tpmap ARGS` with {case} = tests/corpus/<id> and {out} = a fresh output folder.",
        "# SYNTHETIC data: no row describes a real person.",
        "",
        "# Citizen IDs that may appear only in the accepted extract and the rejected rows: the one planted",
        "# where no ID belongs, and every ID of the base persons.",
        "canaries = [" + ", ".join(toml_str(x) for x in [CANARY] + sorted({r[col(P_HEAD, 'citizen_id')] for r in PERSONS[1:] if r[col(P_HEAD, 'citizen_id')]})) + "]",
        "",
    ]
    for c in CASES:
        d = os.path.join(OUT, c["id"])
        os.makedirs(d, exist_ok=True)
        for name, data in c["files"].items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        lines.append("[[case]]")
        lines.append(f"id = {toml_str(c['id'])}")
        lines.append(f"class = {toml_str(c['cls'])}")
        lines.append(f"why = {toml_str(c['why'])}")
        lines.append("args = [" + ", ".join(toml_str(a) for a in c["args"]) + "]")
        lines.append(f"exit = {c['exit']}")
        if c["stderr"]:
            lines.append(f"stderr = {toml_str(c['stderr'])}")
        if c["reveal"]:
            lines.append("reveal = true")
        if c["expect"]:
            lines.append("expect = { " + ", ".join(f"{k} = {toml_str(v)}" for k, v in c["expect"].items()) + " }")
        lines.append("")
    # The base of the ID-in-every-field test (tests/it/corpus.rs): every input of the main job.
    base = os.path.join(OUT, "_base")
    os.makedirs(base, exist_ok=True)
    first_hh = HH[1][0]
    for name, data in base_files(**{
        "catalogue.toml": catalogue(),
        "welfare_registry.csv": csv_bytes(registry_rows("validated", "true")),
        "served_list.csv": csv_bytes(registry_rows("program", "p-living")[:4]),
        "served.csv": csv_bytes([["household_id", "program"], [first_hh, "p-health"]], preamble=False),
    }).items():
        with open(os.path.join(base, name), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "cases.toml"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"wrote {len(CASES)} cases to {os.path.relpath(OUT, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
