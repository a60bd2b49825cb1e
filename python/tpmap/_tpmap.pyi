"""Type stubs of tpmap's extension module (hand-written; checked by mypy.stubtest in the test command)."""

from os import PathLike
from typing import Any, Literal, Protocol, final

import polars as pl

__all__ = [
    "__version__",
    "Table",
    "Extract",
    "Scores",
    "Catalogue",
    "Plan",
    "Linked",
    "read_extract",
    "mpi",
    "mpi_changes",
    "mpi_partial",
    "merge",
    "key_column",
    "roll_up_tables",
    "link",
    "run",
    "link_bench",
    "link_files",
    "LINK_RECORD_COLUMNS",
    "link_columns",
    "link_best_registry",
    "link_record_keys",
    "link_block_pairs",
    "link_patterns",
    "link_u_sample",
    "link_train",
    "link_model_warnings",
    "link_score",
    "link_cluster",
    "panel",
    "panel_rounds",
    "synth_panel",
    "build_info",
]

__version__: str

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

_Path = str | PathLike[str]
_Welfare = Literal["validated", "registered", "none"]

@final
class Table:
    """A table exported through the Arrow C stream interface."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...

def read_extract(
    households: _Path | _ArrowStream,
    persons: _Path | _ArrowStream,
    *,
    strict: bool = False,
    encoding: Literal["auto", "utf8", "tis620"] = "auto",
    edition: str = "bmn-2560",
    allow_new_villages: bool = False,
    one_means_pass: bool = False,
    survey_year: int | None = None,
    sheet: str | None = None,
    earlier_citizen_ids: list[int] | None = None,
) -> Extract:
    """Reads and validates a households and a persons table (files or frames); every row is
    accepted or rejected with its reasons."""

@final
class Extract:
    """An accepted extract with its ingest report and rejected rows."""
    def households(self) -> pl.DataFrame: ...
    def persons(self) -> pl.DataFrame: ...
    def rejected_households(self) -> pl.DataFrame: ...
    def rejected_persons(self) -> pl.DataFrame: ...
    def citizen_id_rows(self) -> pl.DataFrame: ...
    @property
    def report(self) -> dict[str, Any]: ...
    def summary(self) -> dict[str, Any]: ...
    def link_records(self) -> pl.DataFrame: ...
    def with_welfare(self, registered: list[bool], validated: list[bool]) -> Extract: ...
    def link_welfare(self, registry: _Path) -> tuple[Extract, dict[str, Any]]: ...
    def score(
        self,
        *,
        mask: str = "11111",
        welfare: _Welfare = "validated",
        unit: Literal["people", "households"] = "people",
        na: Literal["not-deprived", "reweight-within-dimension", "reweight", "reweight-all"] = "not-deprived",
        missing: Literal["drop", "deprived", "not-deprived"] = "drop",
    ) -> Scores: ...

@final
class Scores:
    """Households scored by TPMAP's rule."""
    def households(self) -> pl.DataFrame: ...
    def measures(self, *, bootstrap: int = 0, seed: int = 1) -> pl.DataFrame: ...
    def deprivations(self) -> pl.DataFrame: ...
    def spec(self) -> pl.DataFrame: ...
    def write_partial(self, out: _Path, *, bootstrap: int = 0, seed: int = 1) -> None: ...
    def tpmap_tables(self, *, year: int = 2561) -> dict[str, Any]: ...
    def plan(
        self,
        catalogue: Catalogue,
        *,
        served: _Path | None = None,
        served_list: _Path | None = None,
        population: Literal["target", "poor"] = "target",
        date: str | None = None,
        key: bytes | None = None,
    ) -> Plan: ...

@final
class Catalogue:
    """A program catalogue (TOML)."""
    def __new__(cls, path: _Path, *, edition: str = "bmn-2560") -> Catalogue: ...
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def illustrative(self) -> bool: ...
    @property
    def programs(self) -> list[str]: ...
    def rule(self, program: str) -> str: ...

@final
class Plan:
    """Households matched to programs, with gaps and reasons."""
    def household_plan(self, *, reveal_ids: bool = False) -> pl.DataFrame: ...
    def programs(self) -> pl.DataFrame: ...
    def declined(self, *, reveal_ids: bool = False) -> pl.DataFrame: ...
    def report(
        self, level: Literal["country", "province", "amphoe"] = "province", *, suppress: int | None = None
    ) -> pl.DataFrame: ...
    def worklists(self, *, reveal_ids: bool = False) -> dict[str, pl.DataFrame]: ...
    def summary(self) -> dict[str, Any]: ...
    def explain(self, household_id: str, program: str) -> dict[str, Any]: ...
    def write(self, dir: _Path, *, suppress: int = 5, reveal_ids: bool = False) -> dict[str, Any]: ...

def mpi(
    data: _ArrowStream,
    spec: list[tuple[str, str, str]],
    k: str,
    *,
    areas: list[str] = ...,
    over: list[str] = ...,
    weight: str | None = None,
    strata: str | None = None,
    psu: str | None = None,
    na: Literal["not-deprived", "reweight-within-dimension", "reweight", "reweight-all"] = "not-deprived",
    missing: Literal["drop", "deprived", "not-deprived"] = "drop",
    bootstrap: int = 0,
    seed: int = 1,
) -> pl.DataFrame:
    """Alkire-Foster measures at every level for your own deprivation matrix; spec rows are
    (dimension, indicator column, weight as '1/6', '0.25' or '25%')."""

def mpi_partial(
    data: _ArrowStream,
    spec: list[tuple[str, str, str]],
    k: str,
    out: str | PathLike[str],
    *,
    areas: list[str] = ...,
    weight: str | None = None,
    na: Literal["not-deprived", "reweight-within-dimension", "reweight", "reweight-all"] = "not-deprived",
    missing: Literal["drop", "deprived", "not-deprived"] = "drop",
) -> None:
    """Write the partial result of ``data`` (every area's sums, docs/partial.md) into the folder
    ``out``, for ``merge`` to add up exactly with other parts' (one province each, say)."""

def merge(parts: list[str | PathLike[str]], *, tpmap_areas: bool = False) -> pl.DataFrame:
    """The measures of the whole, as ``mpi`` returns them, from partial-result folders written
    by ``mpi_partial`` or ``tpmap mpi --partial``; with ``tpmap_areas=True``, from folders written
    by ``Scores.write_partial``, as ``Scores.measures()`` returns them."""

def roll_up_tables(common: _ArrowStream, poor: _ArrowStream, *, year: str, mask: str) -> dict[str, Any]:
    """TPMAP's public tables at every level from their village rows (``Scores.tpmap_tables()``'s
    ``["common"]["village"]`` and ``["poor"]["village"]``, possibly summed over parts)."""

def key_column(columns: list[str], *, persons: bool = False, edition: str = "bmn-2560") -> str | None:
    """The column ``read_extract`` takes the household key from, among ``columns`` (with
    ``persons=True``, a persons table's), or None."""

def mpi_changes(
    t0: _ArrowStream,
    t1: _ArrowStream | None,
    spec: list[tuple[str, str, str]],
    k: str,
    *,
    years: float | None = None,
    round: str | None = None,
    unit_id: str | None = None,
    areas: list[str] = ...,
    over: list[str] = ...,
    weight: str | None = None,
    strata: str | None = None,
    psu: str | None = None,
    na: Literal["not-deprived", "reweight-within-dimension", "reweight", "reweight-all"] = "not-deprived",
    missing: Literal["drop", "deprived", "not-deprived"] = "drop",
    bootstrap: int = 0,
    seed: int = 1,
) -> pl.DataFrame:
    """Changes per area between two rounds measured alike (absolute, relative and, with years,
    annualised) of H, A, M0 and each censored headcount ratio; ``t1=None`` with a
    ``round`` column when one table holds both rounds; panel standard errors with ``unit_id``,
    otherwise independent samples."""

@final
class Linked:
    """Records linked across registries."""
    def pairs(self, *, min_probability: float = 0.01) -> pl.DataFrame: ...
    def entities(self) -> pl.DataFrame: ...
    def explain(self, index: int) -> dict[str, Any]: ...
    def model_json(self) -> str: ...
    def quality(self, truth: _Path) -> dict[str, Any]: ...
    def errors(self, truth: _Path) -> pl.DataFrame: ...
    def error_patterns(self, truth: _Path) -> pl.DataFrame: ...
    @property
    def warnings(self) -> list[str]: ...
    @property
    def records(self) -> int: ...
    @property
    def candidate_pairs(self) -> int: ...
    @property
    def matches(self) -> int: ...

def link(
    sources: list[_Path | _ArrowStream],
    *,
    names: list[str] | None = None,
    task: Literal["link", "dedupe", "link-and-dedupe"] = "link",
    threshold: float = 0.9,
    model: str | None = None,
    max_memory: int | str | None = None,
) -> Linked: ...
def link_files(
    first: _Path,
    second: _Path,
    out: _Path,
    *,
    threshold: float = 0.9,
    model: str | None = None,
    max_memory: int | str | None = None,
    explain: int = 20,
) -> dict[str, Any]:
    """Links two registry CSV files with the first read a group of provinces at a time; writes the job's files."""
def link_bench(
    dir: _Path, *, households: int = 1000, seed: int = 1, kind: Literal["tpmap", "registries"] = "tpmap"
) -> dict[str, Any]:
    """Writes a SYNTHETIC labelled Thai linkage benchmark (survey, welfare, agency, truth)."""

# The steps of a distributed link job (tpmap::link::steps), for tpmap.spark.link.
LINK_RECORD_COLUMNS: list[str]
def link_best_registry(table: _ArrowStream) -> pl.DataFrame:
    """Each person's best registry match (person, deterministic, validated), as link_welfare chooses."""
def link_columns(columns: list[str]) -> list[tuple[str, str]]:
    """Which input column tpmap reads as each record column: (canonical name, column)."""
def link_record_keys(table: _ArrowStream, *, source: str, rows: list[int], model: str | None = None) -> pl.DataFrame:
    """Step 1: each record's key, normalised names, valid ID, entity alone and blocking keys."""
def link_block_pairs(
    table: _ArrowStream, *, task: Literal["link", "dedupe", "link-and-dedupe"], model: str | None = None
) -> tuple[pl.DataFrame, list[int]]:
    """Step 2: the pairs of whole blocks (rule, a, b) and the blocks skipped per rule."""
def link_patterns(first: _ArrowStream, second: _ArrowStream) -> pl.DataFrame:
    """Step 3: the comparison pattern of each row of `first` against the same row of `second`."""
def link_u_sample(sizes: list[int], *, task: Literal["link", "dedupe", "link-and-dedupe"]) -> pl.DataFrame:
    """Step 4a: the random record pairs u is estimated from."""
def link_train(random: _ArrowStream, candidates: _ArrowStream) -> tuple[str, list[str]]:
    """Step 4b: the model (JSON) and its warnings from pattern counts."""
def link_model_warnings(model: str, candidates: _ArrowStream) -> tuple[str, list[str]]:
    """Step 4b for a saved model: the model (JSON) and its warnings."""
def link_score(table: _ArrowStream, *, model: str, records: int, floor: float, threshold: float) -> pl.DataFrame:
    """Step 5: scores pairs from their patterns and first-record name counts."""
def link_cluster(
    records: _ArrowStream,
    edges: _ArrowStream,
    *,
    sources: int,
    threshold: float,
    task: Literal["link", "dedupe", "link-and-dedupe"],
) -> pl.DataFrame:
    """Step 6: entities of whole connected components (rec, rep, entity)."""

def run(
    dir: _Path,
    out: _Path,
    *,
    partition: Literal["auto", "whole", "province"] = "auto",
    max_memory: int | str | None = None,
    earlier: list[_Path] = ...,
) -> dict[str, Any]:
    """The main job on a folder, like `tpmap run`; returns report.json's content.

    `partition="province"` (or a `max_memory` budget, "4GiB" or bytes) reads a wave of provinces
    at a time with the same outputs (a plan too, made over the waves' poor households; a
    welfare registry or beneficiary list linked with every wave's persons; under a budget the
    registry and the list a wave at a time); "auto" does so for a Parquet extract of 10 M persons or more (a CSV persons file
    of 1.6 GB or more), earlier rounds then compared a wave at a time (within `max_memory` when given). `earlier`: folders of earlier rounds, oldest first,
    compared with this one household by household (`out/panel/`, the report's "Year over year")."""

def panel(
    earlier: Extract,
    later: Extract,
    *,
    served: _Path | None = None,
    mask: str = "11111",
    welfare: _Welfare = "validated",
    edition_map: _Path | None = None,
    out: _Path | None = None,
) -> dict[str, Any]:
    """Two survey rounds compared household by household, like `tpmap panel`.

    Returns `summary` (dict), `matches`, `transitions` and `effects` (polars frames) and `caveat`."""

def panel_rounds(
    rounds: list[_Path],
    out: _Path,
    *,
    served: _Path | None = None,
    mask: str = "11111",
    welfare: _Welfare = "validated",
    partition: Literal["auto", "whole", "province"] = "auto",
    max_memory: int | str | None = None,
) -> dict[str, Any]:
    """Rounds read from their folders and compared pair by pair into `out`, like `tpmap panel`:
    large Parquet or CSV rounds a wave of provinces at a time (two national rounds under 4 GiB).
    `max_memory` (bytes or "4.5GiB"): refused before any round is read below the comparison's
    estimate; the rounds are read in waves that fit.

    Returns `names`, `reports` (each round's reading) and `pairs` (each pair's summary, country
    and province flows, follow-up)."""

def synth_panel(
    out: _Path,
    years: list[int],
    *,
    households: int = 10000,
    seed: int = 2561,
    provinces: list[int] | None = None,
    exit: float = 0.35,
    served_effect: float = 0.25,
    stationary: bool = False,
) -> dict[str, Any]:
    """SYNTHETIC rounds of consecutive TPMAP years with known dynamics, like `tpmap synth --years`."""

def build_info() -> dict[str, Any]: ...
