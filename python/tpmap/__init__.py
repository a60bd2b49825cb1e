"""tpmap: ingest, link, score and plan for Thailand's TPMAP poverty-eradication work.

A thin layer over the tpmap Rust library. Tables come back as polars DataFrames; tables go in as
anything speaking the Arrow PyCapsule interface (polars, pyarrow, pandas >= 2.2) or as file paths.
`tpmap.spark` runs the same code on Apache Spark (docs/spark.md).

>>> import tpmap
>>> x = tpmap.read_extract("data-samples/households.csv", "data-samples/persons.csv")  # doctest: +SKIP
>>> scores = x.score()                                                                   # doctest: +SKIP
>>> scores.measures().filter(level="province")                                           # doctest: +SKIP
"""

import warnings

from .errors import (
    ConfigError,
    FormatError,
    InvalidRowError,
    LimitError,
    RuleError,
    TpmapError,
    TpmapFileNotFoundError,
    TpmapOSError,
)
from ._tpmap import (
    Catalogue,
    Extract,
    Linked,
    Plan,
    Scores,
    Table,
    __version__,
    build_info,
    key_column,
    link,
    link_bench,
    link_files,
    merge,
    mpi,
    mpi_changes,
    mpi_partial,
    panel,
    panel_rounds,
    read_extract,
    roll_up_tables,
    run,
    synth_panel,
)

__all__ = [
    "Catalogue",
    "ConfigError",
    "FormatError",
    "InvalidRowError",
    "LimitError",
    "RuleError",
    "TpmapFileNotFoundError",
    "TpmapOSError",
    "Extract",
    "Linked",
    "Plan",
    "Scores",
    "Table",
    "TpmapError",
    "__version__",
    "build_info",
    "key_column",
    "link",
    "link_bench",
    "link_files",
    "merge",
    "mpi",
    "mpi_changes",
    "mpi_partial",
    "panel",
    "panel_rounds",
    "read_extract",
    "roll_up_tables",
    "run",
    "synth_panel",
]

if build_info()["opt_level"] == "0":
    warnings.warn(
        "tpmap's extension was built without optimisation (cargo profile "
        f"{build_info()['profile']!r}); it runs many times slower. Build with "
        "`maturin build --profile ci` or `--release`.",
        RuntimeWarning,
        stacklevel=2,
    )
