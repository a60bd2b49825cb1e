"""Splink 5 (DuckDB backend) on tpmap's SYNTHETIC labelled Thai linkage benchmark.

Usage: python benches/splink_compare.py DIR OUT.json [THRESHOLD]

DIR holds survey.csv, welfare.csv, agency.csv and truth.csv from `tpmap link-bench`. Splink is
configured as well as its documentation allows for this data: Python-side cleaning of Thai names
(titles stripped, zero-width characters removed), Buddhist-Era years converted, blocking rules
mirroring tpmap's (without a Thai soundex, which Splink does not have), NameComparison with
term-frequency adjustments, DateOfBirthComparison, Levenshtein on citizen IDs, exact sex, village
and house number; u by random sampling (1e6 pairs), m by EM on two blocking rules (birth date;
given and family name, as in Splink's tutorials: EM blocked on family name alone learns households
rather than people). Reports the
same quality measures as `tpmap link --truth` and the wall time of each phase.
"""

import csv
import json
import re
import resource
import sys
import time
from collections import defaultdict

import duckdb
import pandas as pd
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

TITLES = re.compile(r"^(เด็กชาย|เด็กหญิง|ด\.ช\.|ด\.ญ\.|นางสาว|น\.ส\.|นาง|นาย|จ\.ส\.อ\.|พระครู)\s*")
ZW = re.compile("[\u200b\u200c\u200d\ufeff\u00ad]")
THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def clean_name(s: str) -> str:
    s = ZW.sub("", s or "").strip()
    s = TITLES.sub("", s)
    return re.sub(r"\s+", " ", s)


def clean_date(s: str) -> str | None:
    s = (s or "").translate(THAI_DIGITS).strip()
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", s)
    if not m:
        return None
    y = int(m.group(1))
    if y > 2400:
        y -= 543
    return f"{y:04d}-{m.group(2)}-{m.group(3)}"


def read(path: str, source: str) -> pd.DataFrame:
    rows = [l for l in open(path, encoding="utf-8") if not l.startswith("#")]
    df = pd.read_csv(pd.io.common.StringIO("".join(rows)), dtype=str, keep_default_na=False)
    df["unique_id"] = source + ":" + df["record_id"]
    df["first_name"] = df["first_name"].map(clean_name)
    df["last_name"] = df["last_name"].map(clean_name)
    df["birth_date"] = df["birth_date"].map(clean_date)
    for c in ["citizen_id", "sex", "village_code", "house_no"]:
        df[c] = df[c].replace("", None)
    df["tambon"] = df["village_code"].str[:6]
    df["month_day"] = df["birth_date"].str[5:]
    return df[["unique_id", "citizen_id", "first_name", "last_name", "birth_date", "sex", "village_code", "tambon", "month_day", "house_no"]]


def main():
    d, out = sys.argv[1], sys.argv[2]
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 0.9
    t0 = time.time()
    phases = {}
    sources = ["survey", "welfare", "agency"]
    dfs = [read(f"{d}/{s}.csv", s) for s in sources]
    phases["read_and_clean"] = time.time() - t0

    con = duckdb.connect()
    con.execute("SET threads TO 2")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("citizen_id"),
            block_on("substr(last_name, 1, 2)", "tambon"),
            block_on("birth_date", "substr(first_name, 1, 1)"),
            block_on("month_day", "last_name"),
            block_on("first_name", "last_name"),
            block_on("birth_date", "tambon"),
        ],
        comparisons=[
            cl.LevenshteinAtThresholds("citizen_id", [1, 2]),
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("sex"),
            cl.ExactMatch("village_code"),
            cl.ExactMatch("house_no"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    t = time.time()
    linker = Linker([db_api.register(df) for df in dfs], settings)
    linker.training.estimate_probability_two_random_records_match([block_on("citizen_id")], recall=0.7)
    phases["setup"] = time.time() - t
    t = time.time()
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    phases["u_random_sampling"] = time.time() - t
    t = time.time()
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    phases["em"] = time.time() - t
    t = time.time()
    pred = linker.inference.predict(threshold_match_probability=0.01)
    phases["predict"] = time.time() - t
    t = time.time()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold)
    cl_df = clusters.as_pandas_dataframe()
    pred_df = pred.as_pandas_dataframe()
    phases["cluster_and_collect"] = time.time() - t
    total = time.time() - t0

    # Quality against the truth (cross-source pairs: the link task).
    truth = {}
    for r in csv.DictReader(open(f"{d}/truth.csv")):
        truth[f"{r['source']}:{r['record_id']}"] = r["person"]
    groups = defaultdict(list)
    for k, p in truth.items():
        groups[p].append(k)
    true_pairs = 0
    for ks in groups.values():
        for i in range(len(ks)):
            for j in range(i + 1, len(ks)):
                true_pairs += ks[i].split(":")[0] != ks[j].split(":")[0]
    acc = pred_df[pred_df["match_probability"] >= threshold]
    tp = sum(truth[a] == truth[b] for a, b in zip(acc["unique_id_l"], acc["unique_id_r"]))
    precision = tp / len(acc) if len(acc) else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # B-cubed on clusters.
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
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "tool": "splink",
        "version": __import__("splink").__version__,
        "records": n,
        "candidate_pairs_scored_p_ge_0.01": int(len(pred_df)),
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "cluster_precision": bp,
        "cluster_recall": br,
        "cluster_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "seconds": {"total": total, **phases},
        "peak_rss_mb_python_process": ru,
    }
    json.dump(result, open(out, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
