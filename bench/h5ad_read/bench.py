"""h5ad read benchmark: Swift (`singlecell info`) vs `anndata.read_h5ad`, same file, same run.

    swift build -c release --product singlecell
    PYTHON bench/h5ad_read/bench.py [--repeats 15] [--binary PATH] [--compression gzip|lzf]
        [--cells 10000 --genes 1000] [--dense] [--file PATH]

PYTHON: any environment with anndata (the scvi-tools one, for instance). The file: 10,000
cells × 1,000 genes by default (`--cells`, `--genes`), CSR float32 counts (Poisson, ~10 % nonzero, seed 0), obs with a
categorical and a float column, var with a string column; with `--dense`, X is the same counts as a
dense float32 array and obsm holds a 50-column float32 X_pca (both chunked in two dimensions by
h5py's guess when compressed); written by anndata to a temporary
directory, uncompressed or with `write_h5ad(compression="gzip")` (or `"lzf"`); or an existing file
(`--file`). With gzip (and with `--file`), Swift is also timed with SINGLECELL_ZLIB=1 (zlib instead
of libdeflate).

Both sides are timed in-process around the read only: Swift with the hidden option
`singlecell info FILE --time-reads N` (N reads of the whole file into an AnnData, median
printed), anndata around `read_h5ad` (imports excluded). Process start-up of `singlecell`
(about 0.4 s, mostly loading libtorch) is not counted. Prints the medians and
anndata / Swift (above 1 means Swift reads faster).
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_file(path: pathlib.Path, compression, n_obs: int, n_vars: int, dense: bool) -> None:
    rng = np.random.default_rng(0)
    X = sp.random(n_obs, n_vars, density=0.1, format="csr", random_state=0, dtype=np.float32)
    X.data = rng.poisson(2.0, size=X.nnz).astype(np.float32) + 1
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["B", "T", "NK", "Mono"], n_obs)), "score": rng.normal(size=n_obs)},
        index=[f"cell_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame({"gene_ids": [f"ENSG{j:08d}" for j in range(n_vars)]}, index=[f"gene_{j}" for j in range(n_vars)])
    adata = ad.AnnData(X=X.toarray() if dense else X, obs=obs, var=var)
    if dense:
        adata.obsm["X_pca"] = rng.normal(size=(n_obs, 50)).astype(np.float32)
    adata.write_h5ad(path, compression=compression)


def swift_median(binary, path, repeats, environment=None) -> float:
    """Median seconds of `repeats` whole reads of `path` in one `singlecell` process."""
    out = subprocess.run(
        [binary, "info", str(path), "--time-reads", str(repeats)],
        check=True, capture_output=True, text=True, env={**os.environ, **(environment or {})},
    ).stdout
    return float(out.split("median_read_seconds")[1].split()[0])


def python_median(read, path, repeats) -> float:
    """Median seconds of `repeats` calls of `read(path)`, after one warm-up call."""
    read(path)
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        read(path)
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/singlecell"))
    parser.add_argument("--compression", choices=["none", "gzip", "lzf"], default="none")
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--genes", type=int, default=1_000)
    parser.add_argument("--dense", action="store_true", help="X as a dense array, plus a dense obsm")
    parser.add_argument("--file", help="time this h5ad instead of a generated one (e.g. ../shared/data/*.h5ad)")
    args = parser.parse_args()
    compression = None if args.compression == "none" else args.compression

    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path = pathlib.Path(args.file)
        else:
            path = pathlib.Path(tmp) / f"bench_{args.cells}_{args.genes}.h5ad"
            make_file(path, compression, args.cells, args.genes, args.dense)
        subprocess.run([args.binary, "info", str(path)], check=True, capture_output=True)  # warm-up
        p = python_median(ad.read_h5ad, path, args.repeats)
        s = swift_median(args.binary, path, args.repeats)
        zlib = swift_median(args.binary, path, args.repeats, {"SINGLECELL_ZLIB": "1"}) if compression == "gzip" or args.file else None

    if args.file:
        print(f"file: {path}; repeats {args.repeats}")
    else:
        layout = "dense" if args.dense else "CSR"
        print(f"file: {args.cells} x {args.genes} {layout} float32, {path.name}, compression {args.compression}; repeats {args.repeats}")
    print(f"swift AnnData.read(h5ad:):  median {s * 1e3:.1f} ms")
    if zlib is not None:
        print(f"  with SINGLECELL_ZLIB=1:   median {zlib * 1e3:.1f} ms")
    print(f"anndata.read_h5ad:          median {p * 1e3:.1f} ms")
    print(f"ratio anndata / swift: {p / s:.2f}x")


if __name__ == "__main__":
    main()
