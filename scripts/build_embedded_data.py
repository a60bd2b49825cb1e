#!/usr/bin/env python3
"""Derive the compact data files that the tpmap crate embeds or bundles, from ../shared/data.

Run from the repository root: python3 scripts/build_embedded_data.py [SHARED_DATA_DIR]

Writes
  data/areas/areas.csv          code,level,name_th,name_en for provinces, amphoe and tambon
                                (DOPA codes, thailand-geography-json, MIT) plus tambon codes that
                                only the BMN 2559 / TPMAP 2561 village lists use (no names there)
  data/areas/villages.txt       every known 8-digit village code (BMN 2559 names ∪ TPMAP 2561)
  data/names/*.txt              Thai given and family names (CC BY-SA 4.0, see data/names/README.md)
  data/tpmap-2561/villages.csv.gz
                                TPMAP 2561 village tables (`_common` joined with `_11111`), the
                                shape that `tpmap synth` draws synthetic households from
"""
import csv, glob, re, gzip, json, os, shutil, sys

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
out = "data"

prov = json.load(open(f"{src}/areas/provinces.json", encoding="utf-8"))
dist = json.load(open(f"{src}/areas/districts.json", encoding="utf-8"))
sub = json.load(open(f"{src}/areas/subdistricts.json", encoding="utf-8"))
rows = []
for p in prov:
    rows.append((p["provinceCode"], "province", p["provinceNameTh"], p["provinceNameEn"]))
for d in dist:
    rows.append((d["districtCode"], "amphoe", d["districtNameTh"], d["districtNameEn"]))
tambon = set()
for s in sub:
    rows.append((s["subdistrictCode"], "tambon", s["subdistrictNameTh"], s["subdistrictNameEn"]))
    tambon.add(s["subdistrictCode"])

villages = set()
with open(f"{src}/areas/bmn59_village_names.csv", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        # 84 malformed codes ("73??04", 7 digits) are skipped; village numbers past 99 are
        # written with a letter ("501471A0"), as TPMAP does too.
        if re.fullmatch(r"[1-9][0-9]{5}[0-9A-Z][0-9]", r["village_ID"]):
            villages.add(r["village_ID"])
tables = sorted(glob.glob(f"{src}/tpmap-2561/61_*_village_common.csv"))
for path in tables:
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            villages.add(r["village_ID"][:8])
amphoe = {d["districtCode"] for d in dist}
for v in sorted(villages):
    t = int(v[:6])
    if t not in tambon and t // 100 in amphoe:
        tambon.add(t)
        rows.append((t, "tambon", "", ""))
rows.sort()
with open(f"{out}/areas/areas.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["code", "level", "name_th", "name_en"])
    w.writerows(rows)
with open(f"{out}/areas/villages.txt", "w") as f:
    f.write("\n".join(str(v) for v in sorted(villages) if int(v[:6]) in tambon) + "\n")
shutil.copy(f"{src}/areas/LICENSE-thailand-geography-json", f"{out}/areas/")

for name in ["family_names_th.txt", "person_names_female_th.txt", "person_names_male_th.txt"]:
    shutil.copy(f"{src}/names/{name}", f"{out}/names/{name}")

# Village profiles: join each province's _common and _11111 village tables on village_ID.
header = None
with gzip.open(f"{out}/tpmap-2561/villages.csv.gz", "wt", encoding="utf-8", newline="", compresslevel=9) as g:
    w = csv.writer(g, lineterminator="\n")
    for path in tables:
        with open(path, encoding="utf-8") as f:
            common = list(csv.DictReader(f))
        with open(path.replace("_common", "_11111"), encoding="utf-8") as f:
            mask = {r["village_ID"]: r for r in csv.DictReader(f)}
        for r in common:
            m = mask[r["village_ID"]]
            keys_c = [k for k in r if k not in ("village_ID", "province_ID", "happiness")]
            keys_m = [k for k in m if k not in ("village_ID", "province_ID", "JPT.MOFval.pov.rate")]
            if header is None:
                header = ["village_ID"] + keys_c + keys_m
                w.writerow(header)
            w.writerow([r["village_ID"]] + [r[k] for k in keys_c] + [m[k] for k in keys_m])
print(len(rows), "areas,", len(villages), "villages,", len(tables), "provinces of village tables")
