"""Summarises one run of scripts/bench_linkage.sh into docs/bench/linkage-<kind>-<records>.json."""
import glob, json, re, statistics, sys
d, kind, hh = sys.argv[1], sys.argv[2], sys.argv[3]
def tm(path):
    t = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    parts = [float(x) for x in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    return secs, rss
t = json.load(open(f"{d}/tpmap/link.json"))
s = json.load(open(f"{d}/splink.json"))
def runs(tool):
    """Wall seconds and peak RSS of every repeat (scripts/bench_linkage.sh runs the tools alternately)."""
    files = sorted(glob.glob(f"{d}/{tool}.*.time")) or [f"{d}/{tool}.time"]
    return [tm(f) for f in files]
tpmap_runs, splink_runs = runs("tpmap"), runs("splink")
tw, tr = statistics.median(w for w, _ in tpmap_runs), max(r for _, r in tpmap_runs)
sw, sr = statistics.median(w for w, _ in splink_runs), max(r for _, r in splink_runs)
q = t["quality"]
out = {
    "benchmark": kind, "households": int(hh), "records": t["records"], "task": s["task"],
    "repeats": len(tpmap_runs), "speedup_median": sw / tw,
    "tpmap": {"wall_seconds": tw, "wall_seconds_runs": [w for w, _ in tpmap_runs], "peak_rss_mb": tr, "threshold": t["threshold"], "precision": q["precision"],
              "recall": q["recall"], "f1": q["f1"], "cluster_f1": q["cluster_f1"],
              "pairs_completeness": q["pairs_completeness"], "reduction_ratio": q["reduction_ratio"],
              "phases": t["seconds"], "warnings": t["warnings"]},
    "splink": {"wall_seconds": sw, "wall_seconds_runs": [w for w, _ in splink_runs], "peak_rss_mb": sr, "best_threshold": s["best_threshold"], "precision": s["precision"],
               "recall": s["recall"], "f1": s["f1"], "at_0.9": s["at_0.9"], "cluster_f1": s["cluster_f1"],
               "phases": s["seconds"]},
}
json.dump(out, open(f"docs/bench/linkage-{kind}-{t['records']}.json", "w"), indent=2)
print(f"{kind:>10} {t['records']:>9} records | tpmap: PC {q['pairs_completeness']:.4f} RR {q['reduction_ratio']:.6f}"
      f" F1 {q['f1']:.4f} (B3 {q['cluster_f1']:.4f}), {tw:.1f} s, {tr:.0f} MB"
      f" | Splink: F1 {s['f1']:.4f} at {s['best_threshold']} (B3 {s['cluster_f1']:.4f}), {sw:.1f} s, {sr:.0f} MB | {sw / tw:.1f}x")
