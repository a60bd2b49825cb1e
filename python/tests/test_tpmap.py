"""Tests of the Python bindings on the bundled SYNTHETIC samples (data-samples/)."""

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import tpmap

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data-samples"
HH, PP = SAMPLES / "households.csv", SAMPLES / "persons.csv"


@pytest.fixture(scope="module")
def extract():
    return tpmap.read_extract(HH, PP)


@pytest.fixture(scope="module")
def scores(extract):
    return extract.score()


@pytest.fixture(scope="module")
def catalogue():
    return tpmap.Catalogue(SAMPLES / "catalogue.toml")


@pytest.fixture(scope="module")
def plan(scores, catalogue):
    return scores.plan(catalogue, served_list=SAMPLES / "served_list.csv")


def read_csv_text(path):
    """A CSV sample as all-text columns (skipping the '#' notice line)."""
    return pl.read_csv(path, comment_prefix="#", infer_schema=False)


# --- ingest -----------------------------------------------------------------------------------


def test_read_extract_reconciles_and_returns_frames(extract):
    r = extract.report
    for t in (r["households"], r["persons"]):
        assert t["input_rows"] == t["accepted"] + t["rejected"]
    hh, pp = extract.households(), extract.persons()
    assert isinstance(hh, pl.DataFrame) and isinstance(pp, pl.DataFrame)
    assert hh.height == r["households"]["accepted"] > 0
    assert pp.height == r["persons"]["accepted"] > 0
    assert "household_id" in hh.columns and "household_id" in pp.columns
    s = extract.summary()
    assert s["households"] == hh.height and s["persons"] == pp.height
    assert "Extract(" in repr(extract)


def test_dirty_sample_rejects_rows_with_reasons_and_loses_none():
    x = tpmap.read_extract(SAMPLES / "dirty" / "households.csv", SAMPLES / "dirty" / "persons.csv")
    r = x.report
    rh, rp = x.rejected_households(), x.rejected_persons()
    assert rh.height == r["households"]["rejected"] > 0
    assert rp.height == r["persons"]["rejected"] > 0
    assert r["households"]["input_rows"] == r["households"]["accepted"] + rh.height
    assert r["persons"]["input_rows"] == r["persons"]["accepted"] + rp.height
    assert rh.columns == ["row", "line", "reasons"]
    assert rh["row"].min() >= 1 and rh["reasons"].str.len_chars().min() > 0


def test_strict_mode_raises_with_file_row_and_column():
    with pytest.raises(tpmap.InvalidRowError) as e:
        tpmap.read_extract(SAMPLES / "dirty" / "households.csv", SAMPLES / "dirty" / "persons.csv", strict=True)
    msg = str(e.value)
    assert "households.csv" in msg and "row" in msg and "column" in msg
    err = e.value
    assert isinstance(err, ValueError) and isinstance(err, tpmap.TpmapError)
    assert err.file.endswith("households.csv") and err.row >= 1 and err.line == err.row + 2 and err.column


def test_errors_are_the_python_exceptions_users_expect(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        tpmap.read_extract(SAMPLES / "nope.csv", PP)
    assert isinstance(e.value, tpmap.TpmapFileNotFoundError) and "nope.csv" in str(e.value)
    assert e.value.filename.endswith("nope.csv")
    with pytest.raises(tpmap.ConfigError, match="encoding") as e:
        tpmap.read_extract(HH, PP, encoding="latin1")
    assert isinstance(e.value, ValueError)
    empty = tmp_path / "households.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(tpmap.FormatError) as e:
        tpmap.read_extract(empty, PP)
    assert e.value.file.endswith("households.csv")
    bad_rule = tmp_path / "cat.toml"
    text = (SAMPLES / "catalogue.toml").read_text(encoding="utf-8")
    bad_rule.write_text(text.replace('eligible = "true"', 'eligible = "target and agee >= 60"', 1), encoding="utf-8")
    with pytest.raises(tpmap.RuleError) as e:
        tpmap.Catalogue(bad_rule)
    assert e.value.column == 12 and isinstance(e.value, ValueError)


@pytest.mark.parametrize("kind", ["polars", "pyarrow", "pandas"])
def test_read_extract_from_frames_matches_files(extract, kind):
    hh, pp = read_csv_text(HH), read_csv_text(PP)
    if kind == "pyarrow":
        hh, pp = hh.to_arrow(), pp.to_arrow()
    elif kind == "pandas":
        hh, pp = hh.to_pandas(), pp.to_pandas()
    x = tpmap.read_extract(hh, pp)
    assert x.report["households"]["accepted"] == extract.report["households"]["accepted"]
    assert x.report["persons"]["accepted"] == extract.report["persons"]["accepted"]
    assert x.households().equals(extract.households())


def test_frames_without_arrow_interface_are_refused():
    with pytest.raises((TypeError, ValueError)):
        tpmap.read_extract([1, 2, 3], PP)


# --- score and measures -----------------------------------------------------------------------


def test_scores_and_measures_agree(extract, scores):
    h = scores.households()
    assert h.height == extract.households().height
    m = scores.measures()
    levels = m["level"].unique().to_list()
    for level in ("country", "province", "amphoe", "tambon", "village"):
        assert level in levels
    country = m.filter(pl.col("level") == "country").row(0, named=True)
    # H is poor people over people, the TPMAP rule.
    assert country["H"] == pytest.approx(country["poor"] / country["population"])
    provinces = m.filter(pl.col("level") == "province")
    assert provinces["poor"].sum() == pytest.approx(country["poor"])
    assert "Scores(" in repr(scores)


def test_mask_changes_the_poor(extract, scores):
    only_income = extract.score(mask="00010")
    all_poor = scores.households()["poor"].sum()
    income_poor = only_income.households()["poor"].sum()
    assert 0 < income_poor < all_poor
    with pytest.raises(ValueError, match="mask"):
        extract.score(mask="00000")


def test_bootstrap_standard_errors(scores):
    m = scores.measures(bootstrap=20, seed=3)
    se = [c for c in m.columns if "boot" in c]
    assert se, m.columns
    assert m.filter(pl.col("level") == "country")[se[0]].item() > 0


def test_mpi_on_the_deprivation_matrix_reproduces_tpmap_poor(scores):
    d = scores.deprivations()
    spec = scores.spec()
    assert set(spec["indicator"]) <= set(d.columns)
    # TPMAP's rule is the union cutoff: deprived in any indicator.
    m = tpmap.mpi(d, spec.rows(), "union", weight="members")
    tp = scores.measures().filter(pl.col("level") == "country")
    assert m.filter(pl.col("level") == "country")["poor"].item() == pytest.approx(tp["poor"].item())


def test_mpi_from_pandas_with_areas_and_exact_cutoff():
    units = pd.DataFrame(
        {
            "region": ["n", "n", "s", "s"],
            "water": [1, 0, 1, 0],
            "school": [1, 0, 0, 0],
            "income": [0, 1, 1, 0],
        }
    )
    spec = [("living", "water", "1/3"), ("education", "school", "1/3"), ("income", "income", "1/3")]
    m = tpmap.mpi(units, spec, "2/3", areas=["region"])
    country = m.filter(pl.col("level") == "country").row(0, named=True)
    # Units 1 (2/3) and 3 (2/3) are poor at k = 2/3 exactly: no float sum lands under k.
    assert country["poor"] == 2
    assert country["H"] == pytest.approx(0.5)
    assert country["M0"] == pytest.approx((2 / 3 + 2 / 3) / 4)
    with pytest.raises(tpmap.TpmapError):
        tpmap.mpi(units, [("x", "nope", "1")], "union")
    with pytest.raises(ValueError):
        tpmap.mpi(units, spec, "1/3", strata="region")


def test_partial_results_merge_to_the_whole(tmp_path):
    # Two parts (a village split between them), each partial written to a folder, merged: the
    # same measures as one run over all units, to the last bit.
    units = pl.DataFrame(
        {
            "province": ["10", "10", "10", "11", "11", "11"],
            "village": ["1001", "1001", "1002", "1101", "1101", "1102"],
            "members": [3, 1, 4, 2, 5, 1],
            "water": [1, 0, 1, None, 1, 0],
            "school": [1, 0, 0, 0, 1, 1],
            "income": [0, 1, 1, 0, 0, 1],
        }
    )
    spec = [("living", "water", "1/3"), ("education", "school", "1/3"), ("income", "income", "1/3")]
    kw = dict(areas=["province", "village"], weight="members")
    whole = tpmap.mpi(units, spec, "1/3", **kw)
    tpmap.mpi_partial(units.head(2), spec, "1/3", tmp_path / "a", **kw)
    tpmap.mpi_partial(units.tail(4), spec, "1/3", str(tmp_path / "b"), **kw)
    assert (tmp_path / "a" / "partial.json").exists()
    merged = tpmap.merge([tmp_path / "a", tmp_path / "b"])
    assert merged.equals(whole)
    with pytest.raises(tpmap.TpmapError):
        tpmap.merge([tmp_path / "missing"])
    with pytest.raises(tpmap.TpmapError):
        tpmap.merge([])


def test_mpi_breakdowns_conventions_and_columns():
    units = pl.DataFrame(
        {
            "region": ["n", "n", "s", "s"],
            "sex": ["f", "m", "f", "f"],
            "water": [1, 1, 0, 1],
            "school": [1, 0, 0, 1],
        }
    )
    spec = [("living", "water", "1/2"), ("education", "school", "1/2")]
    # k as mpitb users write it: 100 is 100 %; over() breakdowns are not nested.
    m = tpmap.mpi(units, spec, "100", areas=["region"], over=["sex"])
    women = m.filter((pl.col("level") == "sex") & (pl.col("sex") == "f")).row(0, named=True)
    assert women["units"] == 3 and women["poor"] == 2 and women["region"] is None
    assert m.filter(pl.col("level") == "region")["population_share"].sum() == pytest.approx(1.0)
    # Standard errors of H, A and M0; absolute contributions add up to M0.
    country = m.filter(pl.col("level") == "country").row(0, named=True)
    assert {"se_H", "se_A", "se_M0"} <= set(m.columns)
    assert country["water_actb"] + country["school_actb"] == pytest.approx(country["M0"])
    h = country["H"]
    assert country["se_H"] == pytest.approx((h * (1 - h) / 3) ** 0.5)  # n - 1 = 3
    assert tpmap.mpi(units, spec, "1/2", na="reweight-all").height == 1


# --- linkage ----------------------------------------------------------------------------------


def test_link_sample_lists_with_explanations_and_model_reuse():
    files = [SAMPLES / "welfare_registry.csv", SAMPLES / "served_list.csv"]
    linked = tpmap.link(files)
    assert linked.records > 0 and linked.candidate_pairs >= linked.matches > 0
    pairs = linked.pairs()
    assert pairs.filter(pl.col("match")).height == linked.matches
    best = pairs.sort("probability", descending=True).row(0, named=True)
    why = linked.explain(best["index"])
    total = why["prior_weight"] + sum(t["weight"] for t in why["terms"])
    assert total == pytest.approx(why["match_weight"], abs=1e-6)
    ents = linked.entities()
    assert ents.height == linked.records
    again = tpmap.link(files, model=linked.model_json())
    assert again.matches == linked.matches
    with pytest.raises(ValueError, match="task"):
        tpmap.link(files, task="merge")
    # The same registries as frames (pandas and polars) link the same way.
    frames = [read_csv_text(files[0]).to_pandas(), read_csv_text(files[1])]
    as_frames = tpmap.link(frames, names=["welfare_registry", "served_list"])
    assert as_frames.matches == linked.matches
    assert as_frames.entities()["entity"].to_list() == ents["entity"].to_list()
    # Within a budget (bytes or a size): the same job; below what it takes, an error naming the
    # budget and the phase.
    within = tpmap.link(files, max_memory="2GiB")
    assert within.entities()["entity"].to_list() == ents["entity"].to_list()
    with pytest.raises(ValueError, match=r"--max-memory 1\.0 MiB is below what linking \d+ records takes"):
        tpmap.link(files, max_memory=1 << 20)
    with pytest.raises(ValueError, match="not a size"):
        tpmap.link(files, max_memory="lots")


def test_link_bench_quality(tmp_path):
    info = tpmap.link_bench(tmp_path, households=300, seed=5)
    assert info["people"] > 0 and set(info["records"]) >= {"survey", "welfare"}
    files = [tmp_path / f"{s}.csv" for s in sorted(info["records"])]
    q = tpmap.link(files).quality(tmp_path / "truth.csv")
    assert q["f1"] > 0.9 and q["pairs_completeness"] > 0.9


def test_link_files_in_parts_write_the_whole_jobs_files(tmp_path):
    tpmap.link_bench(tmp_path, households=600, seed=4)
    survey, welfare = tmp_path / "survey.csv", tmp_path / "welfare.csv"
    whole = tpmap.link([survey, welfare])
    report = tpmap.link_files(survey, welfare, tmp_path / "out")
    assert report["parts"] == 1 and report["matches"] == whole.matches
    assert report["candidate_pairs"] == whole.candidate_pairs and report["records"] == whole.records
    entities = pl.read_csv(tmp_path / "out" / "entities.csv", infer_schema=False)
    assert entities["entity"].to_list() == whole.entities()["entity"].to_list()
    assert len(json.loads((tmp_path / "out" / "explanations.json").read_text())) == 20
    # Below what the second file's records and keys take: refused, nothing written.
    with pytest.raises(ValueError, match="a link in parts"):
        tpmap.link_files(survey, welfare, tmp_path / "refused", max_memory=1 << 20)
    assert not (tmp_path / "refused").exists()


def test_link_registries_benchmark_errors(tmp_path):
    info = tpmap.link_bench(tmp_path, households=400, seed=9, kind="registries")
    files = [tmp_path / f"{s}.csv" for s in ("survey", "welfare", "agency")]
    linked = tpmap.link(files, task="link-and-dedupe")
    q = linked.quality(tmp_path / "truth.csv")
    errors = linked.errors(tmp_path / "truth.csv")
    patterns = linked.error_patterns(tmp_path / "truth.csv")
    assert info["records"]["survey"] == info["people"]
    assert patterns["pairs"].sum() == errors.height
    missed = errors.filter(pl.col("kind").str.starts_with("missed")).height
    assert abs((1 - q["recall"]) * q["true_pairs"] - missed) < 1e-6
    assert isinstance(linked.warnings, list)
    with pytest.raises(ValueError, match="kind must be"):
        tpmap.link_bench(tmp_path / "x", kind="other")


def test_link_welfare_sets_flags(extract):
    linked, rep = extract.link_welfare(SAMPLES / "welfare_registry.csv")
    assert rep["matched"] > 0
    assert linked.summary()["welfare_validated"] > 0
    assert linked is not extract


# --- catalogue and plan -----------------------------------------------------------------------


def test_catalogue(catalogue):
    assert catalogue.illustrative
    assert len(catalogue.programs) > 10
    rule = catalogue.rule(catalogue.programs[0])
    assert isinstance(rule, str) and rule
    with pytest.raises(ValueError):
        catalogue.rule("no-such-program")


def test_bad_catalogue_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nversion = "1"\n[[programs]]\nid = "p"\n', encoding="utf-8")
    with pytest.raises(tpmap.TpmapError, match="bad.toml"):
        tpmap.Catalogue(bad)


def test_plan_frames_and_explanations(extract, plan):
    s = plan.summary()
    assert 0 < s["covered"] <= s["deprivations"]
    hp = plan.household_plan()
    assert hp.height == s["deprivations"]
    progs = plan.programs()
    assert progs.height == len(tpmap.Catalogue(SAMPLES / "catalogue.toml").programs)
    prov = plan.report("province", suppress=5)
    assert prov.height > 0
    wl = plan.worklists()
    assert wl and all(isinstance(v, pl.DataFrame) for v in wl.values())
    # Work lists carry pseudonyms, never the extract's household IDs.
    ids = set(extract.households()["household_id"].cast(pl.String))
    for df in wl.values():
        for col in df.columns:
            assert not ids & set(df[col].cast(pl.String).to_list()), col
    hid = str(extract.households()["household_id"][0])
    why = plan.explain(hid, tpmap.Catalogue(SAMPLES / "catalogue.toml").programs[0])
    assert why["outcome"] in ("pass", "fail", "unknown") and why["reasons"]
    with pytest.raises(ValueError):
        plan.explain(hid, "no-such-program")
    with pytest.raises(ValueError):
        plan.report("region")
    assert plan.declined().height >= 0


def test_pseudonym_key_policy(scores, catalogue, monkeypatch, tmp_path):
    # The library, the command line and Python share one policy: key given, else
    # $TPMAP_PSEUDONYM_KEY, else the public default, which warns.
    monkeypatch.delenv("TPMAP_PSEUDONYM_KEY", raising=False)
    with pytest.warns(UserWarning, match="PUBLIC default key"):
        public = scores.plan(catalogue)
    secret = "a secret key of at least 16 bytes"
    monkeypatch.setenv("TPMAP_PSEUDONYM_KEY", secret)
    from_env = scores.plan(catalogue)
    given = scores.plan(catalogue, key=secret.encode())
    refs = lambda p: set(p.household_plan()["household_ref"].to_list())
    assert refs(from_env) == refs(given)
    assert not refs(public) & refs(from_env), "pseudonyms under another key must differ"
    with pytest.raises(ValueError, match="16"):
        scores.plan(catalogue, key=b"short")
    report = tpmap.run(SAMPLES, tmp_path / "run")
    assert report["plan"]["pseudonym_key"] == "environment"
    monkeypatch.delenv("TPMAP_PSEUDONYM_KEY")
    report = tpmap.run(SAMPLES, tmp_path / "run2")
    assert report["plan"]["pseudonym_key"] == "public_default"
    head = (tmp_path / "run2" / "plan" / "household_plan.csv").read_text(encoding="utf-8").splitlines()[:3]
    assert any("PUBLIC default key" in line for line in head)


def test_messages_hide_citizen_ids(scores, catalogue, tmp_path):
    hid = str(scores.households()["household_id"][0])
    served = tmp_path / "served.csv"
    served.write_text(f"household_id,program\n{hid},1101700230503\n", encoding="utf-8")
    with pytest.raises(tpmap.TpmapError) as e:
        scores.plan(catalogue, served=served)
    assert "1101700230503" not in str(e.value) and "#############" in str(e.value)


def test_plan_write(tmp_path, plan):
    s = plan.write(tmp_path / "plan")
    assert (tmp_path / "plan" / "household_plan.csv").exists()
    assert (tmp_path / "plan" / "provinces.csv").exists()
    assert s["covered"] == plan.summary()["covered"]


# --- the main job and the HTML report -------------------------------------------------------


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    report = tpmap.run(SAMPLES, out)
    return out, report


def test_run_writes_everything(run_out):
    out, report = run_out
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["measure"] == report["measure"]
    for f in ("households.parquet", "measures.parquet", "household_scores.parquet", "report.html"):
        assert (out / f).exists(), f
    assert (out / "plan" / "household_plan.csv").exists()
    assert report["welfare_link"]["matched"] > 0
    m = pl.read_parquet(out / "measures.parquet")
    assert m.filter(pl.col("level") == "country")["poor"].item() == pytest.approx(report["measure"]["country"]["poor"])


def test_parquet_outputs_declare_plain_strings(run_out):
    # pyarrow compute, pandas' .str and Ray reject polars' string_view: every output says `string`.
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out, _ = run_out
    files = sorted(out.rglob("*.parquet"))
    assert len(files) >= 5
    for f in files:
        types = {str(field.type) for field in pq.read_schema(f)}
        assert not any("view" in t for t in types), (f.name, types)
    persons = pq.read_table(out / "persons.parquet")
    assert str(persons.schema.field("first_name").type) == "string"
    assert pc.utf8_length(persons["first_name"]).to_pylist()[:5] == [len(n) for n in persons["first_name"].to_pylist()[:5]]
    frame = pd.read_parquet(out / "households.parquet")
    assert frame["village_code"].str.len().eq(10).all()


def test_report_html_is_self_contained(run_out):
    out, _ = run_out
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "SYNTHETIC" in html and "ILLUSTRATIVE" in html
    # Nothing is fetched: no external scripts, styles, images or fonts.
    for needle in ('src="http', "href=\"http", "@import", "url(http"):
        assert needle not in html
    assert html.count('class="tile"') == 77


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed (Debian: apt-get install chromium); scripts/test.sh installs it")


CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_renders_in_headless_chromium(run_out, tmp_path):
    out, _ = run_out
    exe = chromium()
    url = (out / "report.html").as_uri()
    flags = CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # The script ran (it counts the map's tiles) and the sections are there.
    assert 'data-tiles="77"' in dom
    for section in ('id="country"', 'id="provinces-map"', 'id="ranking"', 'id="coverage"'):
        assert section in dom
    png = tmp_path / "report.png"
    subprocess.run(
        [exe, *flags, "--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={png}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page compresses to a few kilobytes; the report's charts and tables do not.
    assert len(data) > 50_000, len(data)


# --- the package ------------------------------------------------------------------------------


def test_stubs_cover_the_extension():
    stub = ast.parse((Path(tpmap.__file__).parent / "_tpmap.pyi").read_text(encoding="utf-8"))
    names = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in stub.body if isinstance(n, ast.AnnAssign) for t in [n.target] if isinstance(t, ast.Name)}
    public = {n for n in dir(tpmap._tpmap) if not n.startswith("_") or n == "__version__"}
    assert public <= names, public - names
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    for cname, node in classes.items():
        if cname.startswith("_"):
            continue
        declared = {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
        actual = {m for m in dir(getattr(tpmap, cname)) if not m.startswith("_")}
        assert actual <= declared, (cname, actual - declared)


def test_all_exports_and_build_info():
    for name in tpmap.__all__:
        assert hasattr(tpmap, name), name
    info = tpmap.build_info()
    assert info["version"] == tpmap.__version__
    assert info["opt_level"] in ("0", "1", "2", "3", "s", "z")


def test_polars_frames_export_to_pyarrow(scores):
    # Frames that came through the C stream go on to pyarrow and pandas unchanged.
    m = scores.measures()
    t = pa.table(m)
    assert t.num_rows == m.height
    assert t.to_pandas().shape == m.shape


# --- the examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["provincial_officer.py", "analyst_af_study.py", "service.py", "spark_job.py"])
def test_examples_run(name):
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "python" / "examples" / name)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_mpi_changes_between_two_rounds():
    spec = [("living", "water", "1/2"), ("education", "school", "1/2")]
    t0 = pl.DataFrame({"region": ["n", "n", "s", "s"], "water": [1, 1, 0, 1], "school": [1, 0, 0, 1]})
    t1 = pl.DataFrame({"region": ["n", "n", "s", "s"], "water": [1, 0, 0, 0], "school": [1, 0, 0, 1]})
    c = tpmap.mpi_changes(t0, t1, spec, "1/2", areas=["region"], years=2.0)
    assert set(c["measure"]) == {"H", "A", "M0", "censored"}
    assert set(c.filter(pl.col("measure") == "censored")["indicator"]) == {"water", "school"}
    h = c.filter((pl.col("level") == "country") & (pl.col("measure") == "H")).row(0, named=True)
    # Three of four poor, then two of four.
    assert (h["t0"], h["t1"]) == (pytest.approx(0.75), pytest.approx(0.5))
    assert h["absolute"] == pytest.approx(-0.25)
    assert h["relative"] == pytest.approx(-1 / 3)
    assert h["annualised_relative"] == pytest.approx((2 / 3) ** 0.5 - 1)
    assert h["se_absolute"] == pytest.approx(((0.75 * 0.25 + 0.5 * 0.5) / 3) ** 0.5)
    no_years = tpmap.mpi_changes(t0, t1, spec, "1/2")
    assert no_years["annualised_absolute"].null_count() == no_years.height
    with pytest.raises(tpmap.TpmapError):
        tpmap.mpi_changes(t0, t1, spec, "1/2", years=-1.0)
    # One table with a round column, households linked by id: panel SEs (paired differences
    # of the poverty status: 0, -1, 0, 0 -> sd 1/2, over sqrt(4)).
    both = pl.concat([t1.with_columns(round=pl.lit(2), hh=pl.Series(["a", "b", "c", "d"])),
                      t0.with_columns(round=pl.lit(1), hh=pl.Series(["a", "b", "c", "d"]))])
    p = tpmap.mpi_changes(both, None, spec, "1/2", round="round", unit_id="hh")
    hp = p.filter((pl.col("level") == "country") & (pl.col("measure") == "H")).row(0, named=True)
    assert (hp["t0"], hp["t1"]) == (pytest.approx(0.75), pytest.approx(0.5))
    assert hp["se_absolute"] == pytest.approx(0.25)


def test_run_partitioned_matches_the_whole_run(tmp_path):
    # A folder with only the extract.
    data = tmp_path / "data"
    data.mkdir()
    for name in ("households.csv", "persons.csv"):
        shutil.copy(SAMPLES / name, data / name)
    whole = tpmap.run(data, tmp_path / "whole")  # "auto": a small extract is read whole
    parts = tpmap.run(data, tmp_path / "parts", partition="province")
    assert [w["provinces"] for w in parts["partition"]["waves"]] == [["40"], ["50"], ["80"], ["95"]]
    assert "partition" not in whole
    for key in ("ingest", "summary", "measure"):
        assert parts[key] == whole[key], key
    for name in ("measures.csv", "rejected_persons.csv", "report.html"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "parts" / name).read_bytes(), name
    one = tpmap.run(data, tmp_path / "one", max_memory="64GiB")
    assert len(one["partition"]["waves"]) == 1 and one["measure"] == whole["measure"]
    with pytest.raises(tpmap.ConfigError, match="max-memory"):
        tpmap.run(data, tmp_path / "tiny", max_memory=1000)
    # The samples folder's beneficiary list is linked with every province's persons too, and
    # within a budget a wave at a time.
    whole = tpmap.run(SAMPLES, tmp_path / "samples-whole")
    parts = tpmap.run(SAMPLES, tmp_path / "samples-parts", partition="province")
    assert parts["plan"]["served_link"] == whole["plan"]["served_link"] and whole["plan"]["served_link"]["matched"] > 0
    budget = tpmap.run(SAMPLES, tmp_path / "samples-budget", max_memory="64GiB")
    assert budget["plan"]["served_link"] == whole["plan"]["served_link"] and budget["plan"]["summary"] == whole["plan"]["summary"]
    # A welfare registry is linked with every province's persons.
    shutil.copy(SAMPLES / "welfare_registry.csv", data / "welfare_registry.csv")
    whole = tpmap.run(data, tmp_path / "whole-welfare")
    parts = tpmap.run(data, tmp_path / "parts-welfare", partition="province")
    assert parts["partition"]["passes"] == 2 and whole["welfare_link"]["matched"] > 0
    drop = lambda link: {k: v for k, v in link.items() if k != "seconds"}
    assert drop(parts["welfare_link"]) == drop(whole["welfare_link"])
    assert parts["summary"] == whole["summary"]
    # Within a budget, a wave at a time: the same marks, each wave's link records kept from the
    # first reading (two readings, as partitioned).
    budget = tpmap.run(data, tmp_path / "budget-welfare", max_memory="64GiB")
    assert drop(budget["welfare_link"]) == drop(whole["welfare_link"]) and budget["partition"]["passes"] == 2
    assert budget["summary"] == whole["summary"]
    (data / "welfare_registry.csv").unlink()
    # With a catalogue: the plan, made over the provinces' poor households, is the whole run's.
    shutil.copy(SAMPLES / "catalogue.toml", data / "catalogue.toml")
    whole = tpmap.run(data, tmp_path / "whole-plan")
    parts = tpmap.run(data, tmp_path / "parts-plan", partition="province")
    assert whole["plan"]["summary"]["places"] > 0
    assert {k: v for k, v in parts["plan"].items() if k not in ("seconds", "dir")} == {
        k: v for k, v in whole["plan"].items() if k not in ("seconds", "dir")
    }
    for name in ("household_plan.csv", "declined.csv", "programs.csv"):
        got = (tmp_path / "parts-plan" / "plan" / name).read_bytes()
        assert got == (tmp_path / "whole-plan" / "plan" / name).read_bytes(), name
    with pytest.raises(tpmap.ConfigError, match="partitioned"):
        tpmap.run(data, tmp_path / "refused", partition="whole", max_memory="4GiB")


def test_panel_of_two_synthetic_rounds(tmp_path):
    rounds = tmp_path / "rounds"
    truth = tpmap.synth_panel(rounds, [2561, 2562], households=6000, provinces=[40, 57])
    assert truth["years"] == [2561, 2562] and "SYNTHETIC" in truth["notice"]
    a = tpmap.read_extract(rounds / "2561" / "households.parquet", rounds / "2561" / "persons.parquet")
    b = tpmap.read_extract(rounds / "2562" / "households.parquet", rounds / "2562" / "persons.parquet")
    got = tpmap.panel(a, b, served=rounds / "2561" / "served.csv", out=tmp_path / "out")
    t = got["transitions"]
    assert isinstance(t, pl.DataFrame) and t["level"][0] == "country"
    # poor(t+1) = poor(t) - exits + entries + moved in - moved out + new - gone, in every area.
    balance = t["poor_t"] - t["exits"] + t["entries"] + t["moved_in"] - t["moved_out"] + t["new_poor"] - t["gone_poor"]
    assert (balance == t["poor_t1"]).all()
    people = t["people_poor_t"] - t["people_exits"] + t["people_entries"] + t["people_moved_in"] - t["people_moved_out"]
    assert (people + t["people_new_poor"] - t["people_gone_poor"] == t["people_poor_t1"]).all()
    m = got["matches"]
    assert set(m["route"].drop_nulls()) >= {"same_household", "members", "new"}
    # Every household of each round is there: one fate per earlier household, one row per later one.
    assert m["fate"].drop_nulls().len() == a.report["households"]["accepted"]
    assert m["household_id_t1"].drop_nulls().len() == b.report["households"]["accepted"]
    truth = truth["follow_up"][0]["expected_effect"]
    pooled = got["effects"].filter(pl.col("program") == "all").row(0, named=True)
    assert pooled["ci_low"] <= truth <= pooled["ci_high"]
    assert got["summary"]["persons_in_both"] > 0 and "Observational" in got["caveat"]
    assert (tmp_path / "out" / "effects.csv").read_text(encoding="utf-8").startswith("# Observational")
    # The folders read a province at a time: the same matching, counts and flows.
    waves = tpmap.panel_rounds([rounds / "2561", rounds / "2562"], tmp_path / "waves", partition="province")
    assert waves["pairs"][0]["summary"] == got["summary"]
    assert pl.read_csv(tmp_path / "waves" / "transitions.csv").equals(pl.read_csv(tmp_path / "out" / "transitions.csv"))
    with pytest.raises(tpmap.ConfigError, match="partition"):
        tpmap.panel_rounds([rounds / "2561", rounds / "2562"], tmp_path / "never", partition="bogus")
    # Within a memory budget: the same flows; below the comparison's estimate, refused before any
    # round is read and nothing written.
    budget = tpmap.panel_rounds([rounds / "2561", rounds / "2562"], tmp_path / "budget", max_memory="1GiB")
    assert budget["pairs"][0]["summary"] == got["summary"]
    assert pl.read_csv(tmp_path / "budget" / "transitions.csv").equals(pl.read_csv(tmp_path / "out" / "transitions.csv"))
    with pytest.raises(tpmap.ConfigError, match="comparing these 2 rounds needs"):
        tpmap.panel_rounds([rounds / "2561", rounds / "2562"], tmp_path / "small", max_memory=1 << 20)
    assert not (tmp_path / "small").exists()
    # The main job within a budget compares too (refused before the twenty-sixth session).
    within = tpmap.run(rounds / "2562", tmp_path / "run-budget", earlier=[rounds / "2561"], max_memory="1GiB")
    assert within["panel"]["pairs"][0]["summary"] == got["summary"]
    # The main job on the later round, compared with the earlier one (report and panel/).
    report = tpmap.run(rounds / "2562", tmp_path / "run", earlier=[rounds / "2561"])
    assert report["panel"]["pairs"][0]["summary"] == got["summary"]
    assert "year-over-year" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert (tmp_path / "run" / "panel" / "matches.parquet").exists()


def test_partials_of_any_split_merge_to_the_measures(tmp_path):
    # The samples cut into parts at random places (a village may be split): each part's
    # partial written by Scores.write_partial, merged over TPMAP's areas, equals measures().
    import random

    hh, pp = read_csv_text(HH), read_csv_text(PP)
    whole = tpmap.read_extract(hh, pp).score().measures()
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, hh.height), 4))
    dirs = []
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, hh.height])):
        part = hh.slice(a, b - a)
        ids = part["household_id"]
        x = tpmap.read_extract(part, pp.filter(pl.col("household_id").is_in(ids.implode())))
        x.score().write_partial(tmp_path / str(i))
        dirs.append(tmp_path / str(i))
    assert tpmap.merge(dirs, tpmap_areas=True).equals(whole)
    # With bootstrap replicates (format version 2), drawn per household: the same SEs.
    boot = tpmap.read_extract(hh, pp).score().measures(bootstrap=25, seed=3)
    for i, d in enumerate(dirs):
        part = hh.slice([0, *cuts][i], ([*cuts, hh.height][i]) - [0, *cuts][i])
        x = tpmap.read_extract(part, pp.filter(pl.col("household_id").is_in(part["household_id"].implode())))
        x.score().write_partial(d, bootstrap=25, seed=3)
    assert tpmap.merge(dirs, tpmap_areas=True).equals(boot)
    # Without tpmap_areas the levels are the partial's own, named but not TPMAP's hierarchy.
    assert tpmap.merge(dirs).height == whole.height


def test_tpmap_tables_of_parts_roll_up_to_the_whole():
    # TPMAP's public tables: the village counts of parts (a village may be split) summed and
    # rolled up equal the whole extract's tables at every level.
    hh, pp = read_csv_text(HH), read_csv_text(PP)
    whole = tpmap.read_extract(hh, pp).score().tpmap_tables()
    assert set(whole["common"]) == {"country", "province", "amphur", "tambol", "village"}
    parts = []
    for a, b in ((0, 700), (700, 1900), (1900, hh.height)):
        part = hh.slice(a, b - a)
        x = tpmap.read_extract(part, pp.filter(pl.col("household_id").is_in(part["household_id"].implode())))
        parts.append(x.score().tpmap_tables())
    summed = {}
    for kind in ("common", "poor"):
        frames = pl.concat([p[kind]["village"] for p in parts])
        # Empty cells (columns the extract does not have) stay empty: a sum of nulls is null.
        sums = [
            pl.when(pl.col(c).count() > 0).then(pl.col(c).sum()).alias(c) for c in frames.columns if c != "area"
        ]
        summed[kind] = frames.group_by("area", maintain_order=True).agg(sums)
    rolled = tpmap.roll_up_tables(summed["common"], summed["poor"], year=whole["year"], mask=whole["mask"])
    for kind in ("common", "poor"):
        for level, want in whole[kind].items():
            assert rolled[kind][level].equals(want), (kind, level)
    with pytest.raises(tpmap.FormatError, match="area"):
        bad = summed["common"].with_columns(pl.lit("ก").alias("area"))
        tpmap.roll_up_tables(bad, summed["poor"], year="61", mask="11111")
