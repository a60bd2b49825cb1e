"""Splink 5 (DuckDB backend) on a SYNTHETIC labelled Thai linkage benchmark, fed the records as
tpmap normalises them.

Usage: python benches/splink_compare.py NORMALISED.csv TRUTH.csv OUT.json TASK

NORMALISED.csv comes from `tpmap link-normalise survey.csv welfare.csv agency.csv --out ...`: names
without titles and zero-width characters, marks in canonical order, CE ISO dates (complete dates
only), partial dates as year/month/day columns, village, tambon, amphoe and province codes, house
numbers, and tpmap's LK82 soundex codes (Splink has no Thai soundex). The cleaning is not timed:
Splink gets it for free. TASK is `link` or `link-and-dedupe` (Splink's link_only and
link_and_dedupe).

Splink is configured as its documentation and a careful user would:
- blocking: the same rules as tpmap's defaults, column for column (they are equalities);
- comparisons: Levenshtein on citizen IDs (1, 2), NameComparison on each name with term-frequency
  adjustments, a date-of-birth comparison that also uses partial dates (custom levels: exact;
  one edit, as DateOfBirthComparison's Damerau-Levenshtein level; within 31 days; year agreeing
  and month agreeing or unknown; else), exact sex, and address levels (village and house; village;
  tambon; amphoe; else);
- training: the prior from the citizen-ID rule (recall 0.7, the share of true pairs an exact ID
  finds here is about that), u by random sampling (1e6 pairs), m by EM on three training blocks
  (given + family name; birth date; citizen ID), as in Splink's tutorials;
- its best threshold: predictions at p >= 0.01 are scored at several thresholds and the best
  pairwise F1 is reported (an oracle choice no user has), with the result at 0.9 beside it.

Reports the same quality measures as `tpmap link --truth` and the wall time of each phase.
"""

import csv
import json
import resource
import sys
import time
from collections import defaultdict

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

THRESHOLDS = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]

BIRTH = cl.CustomComparison(
    output_column_name="birth",
    comparison_levels=[
        cll.NullLevel("birth_year"),
        cll.CustomLevel("birth_date_l = birth_date_r", "exact"),
        cll.CustomLevel("damerau_levenshtein(birth_date_l, birth_date_r) <= 1", "one edit"),
        cll.CustomLevel(
            "abs(date_diff('day', try_cast(birth_date_l AS DATE), try_cast(birth_date_r AS DATE))) <= 31",
            "within 31 days",
        ),
        cll.CustomLevel(
            "birth_year_l = birth_year_r AND (birth_month_l IS NULL OR birth_month_r IS NULL OR birth_month_l = birth_month_r)",
            "year agrees, month agrees or unknown",
        ),
        cll.ElseLevel(),
    ],
)

ADDRESS = cl.CustomComparison(
    output_column_name="address",
    comparison_levels=[
        cll.NullLevel("tambon"),
        cll.CustomLevel("village_code_l = village_code_r AND house_no_l = house_no_r", "village and house"),
        cll.CustomLevel("village_code_l = village_code_r", "village"),
        cll.CustomLevel("tambon_l = tambon_r", "tambon"),
        cll.CustomLevel("amphoe_l = amphoe_r", "amphoe"),
        cll.ElseLevel(),
    ],
)

# tpmap's default blocking rules (src/link/model.rs, Blocking::default), column for column.
RULES = [
    ["citizen_id"],
    ["last_soundex", "tambon"],
    ["birth_date", "first_soundex", "province"],
    ["birth_month", "birth_day", "last_name", "province"],
    ["first_name", "last_name"],
    ["birth_date", "tambon"],
    ["name_soundex_set", "birth_year", "province"],
    ["first_name", "birth_year", "tambon"],
    ["first_name", "house_no", "tambon"],
    ["first_name", "birth_date", "province"],
    ["last_name", "birth_date", "province"],
    ["first_name", "last_soundex", "birth_year"],
    ["last_name", "first_soundex", "birth_year"],
]


def read(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.replace("", None)
    for c in ["birth_year", "birth_month", "birth_day"]:
        df[c] = pd.to_numeric(df[c]).astype("Int64")
    a, b = df["first_soundex"].fillna(""), df["last_soundex"].fillna("")
    df["name_soundex_set"] = [x + y if x <= y else y + x for x, y in zip(a, b)]
    df.loc[df["first_soundex"].isna() | df["last_soundex"].isna(), "name_soundex_set"] = None
    return df


def quality(pairs, truth, groups, comparable, true_pairs):
    tp = sum(truth[a] == truth[b] for a, b in pairs)
    precision = tp / len(pairs) if pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main():
    path, truth_path, out, task = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    link_type = {"link": "link_only", "link-and-dedupe": "link_and_dedupe"}[task]
    t0 = time.time()
    phases = {}
    df = read(path)
    phases["read"] = time.time() - t0
    dfs = [g.reset_index(drop=True) for _, g in df.groupby("source", sort=True)]

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[block_on(*r) for r in RULES],
        comparisons=[
            cl.LevenshteinAtThresholds("citizen_id", [1, 2]),
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            BIRTH,
            cl.ExactMatch("sex"),
            ADDRESS,
        ],
        retain_intermediate_calculation_columns=False,
    )
    t = time.time()
    linker = Linker([db_api.register(d) for d in dfs], settings)
    linker.training.estimate_probability_two_random_records_match([block_on("citizen_id")], recall=0.7)
    phases["setup"] = time.time() - t
    t = time.time()
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    phases["u_random_sampling"] = time.time() - t
    t = time.time()
    for rule in (block_on("first_name", "last_name"), block_on("birth_date"), block_on("citizen_id")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    phases["em"] = time.time() - t
    t = time.time()
    pred = linker.inference.predict(threshold_match_probability=0.01)
    pred_df = pred.as_pandas_dataframe()
    phases["predict"] = time.time() - t

    # Quality against the truth: pairs of the task.
    truth = {}
    for r in csv.DictReader(open(truth_path, encoding="utf-8")):
        truth[f"{r['source']}:{r['record_id']}"] = r["person"]
    groups = defaultdict(list)
    for k, p in truth.items():
        groups[p].append(k)

    def comparable(a, b):
        return link_type == "link_and_dedupe" or a.split(":")[0] != b.split(":")[0]

    true_pairs = sum(
        comparable(ks[i], ks[j]) for ks in groups.values() for i in range(len(ks)) for j in range(i + 1, len(ks))
    )
    scored = list(zip(pred_df["unique_id_l"], pred_df["unique_id_r"], pred_df["match_probability"]))
    by_threshold = {}
    for th in THRESHOLDS:
        pairs = [(a, b) for a, b, p in scored if p >= th]
        by_threshold[th] = quality(pairs, truth, groups, comparable, true_pairs)
    best = max(THRESHOLDS, key=lambda th: by_threshold[th][2])
    t = time.time()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, best)
    cl_df = clusters.as_pandas_dataframe()
    phases["cluster_and_collect"] = time.time() - t
    total = sum(phases.values())
    members = defaultdict(list)
    for uid, cid in zip(cl_df["unique_id"], cl_df["cluster_id"]):
        members[cid].append(uid)
    cluster_of = {u: c for c, us in members.items() for u in us}
    bp = br = 0.0
    for u, p in truth.items():
        cl_members = members[cluster_of[u]]
        both = sum(truth[v] == p for v in cl_members)
        bp += both / len(cl_members)
        br += both / len(groups[p])
    n = len(truth)
    bp, br = bp / n, br / n
    precision, recall, f1 = by_threshold[best]
    result = {
        "tool": "splink",
        "version": __import__("splink").__version__,
        "records": n,
        "task": task,
        "scored_pairs_p_ge_0.01": int(len(pred_df)),
        "best_threshold": best,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "at_0.9": dict(zip(["precision", "recall", "f1"], by_threshold[0.9])),
        "cluster_precision": bp,
        "cluster_recall": br,
        "cluster_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "seconds": {"total_without_cleaning": total, **phases},
        "peak_rss_mb_python_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    json.dump(result, open(out, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
