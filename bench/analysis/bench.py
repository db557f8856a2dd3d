"""Neighbors + UMAP + Leiden benchmark: Swift (`singlecell neighbors --umap --leiden`) vs
scanpy, same data, same run.

    swift build -c release --product singlecell
    /root/fixenv/bin/python bench/analysis/bench.py [--repeats 3] [--binary PATH] [--cells 10000]

Data: 10,000 cells × 50 dimensions built from the 50-component PCA of the bundled PBMC data
(data/pbmc68k_reduced.h5ad after normalize_total(1e4) + log1p, 700 cells): cell i of the
10,000 is a uniformly random point on the segment from PBMC cell (i mod 700) to one of its 15
nearest neighbours, plus Gaussian noise of 0.02 × the per-dimension standard deviation
(numpy seed 0) — the PBMC manifold densified, not 14 clumps of copies per cell. Stored as
obsm["X_pca"] of an h5ad with an empty X.

Steps, with scanpy's defaults on both sides: neighbors (15, euclidean), UMAP (min_dist 0.5,
500 epochs as 10,000 cells ≤ 10,000), Leiden (igraph, resolution 1, 2 iterations).
Both search exactly: scanpy with `transformer="sklearn"` (brute-force KNeighborsTransformer;
its own default for 10,000 cells, pynndescent, fails in scanpy 1.11.5 with this scipy:
`'csr_array' object has no attribute 'getnnz'`), Swift with its default exact search. Both are timed in-process around the three steps only: Swift through the hidden
`--report-timings` option (file reading/writing and process start-up excluded), scanpy
around `sc.pp.neighbors` + `sc.tl.umap` + `sc.tl.leiden` after a warm-up run that compiles
numba's functions. Prints the medians per step and scanpy / Swift (above 1: Swift faster).
"""

import argparse
import pathlib
import statistics
import subprocess
import tempfile
import time
import warnings

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.neighbors import NearestNeighbors

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS = ("neighbors", "umap", "leiden")


def make_file(path: pathlib.Path, n_cells: int) -> ad.AnnData:
    base = sc.read_h5ad(ROOT / "data" / "pbmc68k_reduced.h5ad")
    base.X = base.X.astype(np.float32)
    sc.pp.normalize_total(base, target_sum=1e4)
    sc.pp.log1p(base)
    sc.pp.pca(base, n_comps=50, svd_solver="arpack", random_state=0)
    pcs = np.asarray(base.obsm["X_pca"], dtype=np.float64)
    rng = np.random.default_rng(0)
    _, neighbors = NearestNeighbors(n_neighbors=16).fit(pcs).kneighbors(pcs)
    rows = np.resize(np.arange(pcs.shape[0]), n_cells)
    partners = neighbors[rows, rng.integers(1, 16, n_cells)]
    t = rng.random((n_cells, 1))
    tiled = pcs[rows] + t * (pcs[partners] - pcs[rows]) + rng.normal(size=(n_cells, pcs.shape[1])) * (0.02 * pcs.std(axis=0))
    adata = ad.AnnData(np.zeros((n_cells, 0), dtype=np.float32))
    adata.obs_names = [f"cell{i}" for i in range(n_cells)]
    adata.obsm["X_pca"] = tiled.astype(np.float32)
    adata.write_h5ad(path)
    return adata


def scanpy_once(template: ad.AnnData) -> dict[str, float]:
    adata = template.copy()
    times = {}
    t0 = time.perf_counter()
    sc.pp.neighbors(adata, n_neighbors=15, use_rep="X_pca", transformer="sklearn", random_state=0)
    times["neighbors"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sc.tl.umap(adata, random_state=0)
    times["umap"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, resolution=1.0, random_state=0)
    times["leiden"] = time.perf_counter() - t0
    return times


def swift_once(binary: str, path: pathlib.Path, out: pathlib.Path) -> dict[str, float]:
    text = subprocess.run(
        [binary, "neighbors", str(path), "--use-rep", "X_pca", "-k", "15", "--umap", "--leiden",
         "--report-timings", "-o", str(out)],
        check=True, capture_output=True, text=True).stdout
    return {line.split()[1]: float(line.split()[2]) for line in text.splitlines() if line.startswith("timing ")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/singlecell"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "bench_analysis.h5ad"
        template = make_file(path, args.cells)
        scanpy_once(template[:2000].copy())  # numba compilation
        swift_runs = [swift_once(args.binary, path, pathlib.Path(tmp) / "out.h5ad") for _ in range(args.repeats)]
        python_runs = [scanpy_once(template) for _ in range(args.repeats)]

    def medians(runs):
        per_step = {s: statistics.median(r[s] for r in runs) for s in STEPS}
        per_step["total"] = statistics.median(sum(r[s] for s in STEPS) for r in runs)
        return per_step

    s, p = medians(swift_runs), medians(python_runs)
    print(f"data: {args.cells} cells x 50 dims (densified PBMC PCA); repeats {args.repeats}")
    print(f"{'step':<10} {'swift (s)':>10} {'scanpy (s)':>11} {'scanpy/swift':>13}")
    for step in (*STEPS, "total"):
        print(f"{step:<10} {s[step]:>10.3f} {p[step]:>11.3f} {p[step] / s[step]:>12.2f}x")
    print(f"ratio scanpy / swift (neighbors + UMAP + Leiden): {p['total'] / s['total']:.2f}x")


if __name__ == "__main__":
    main()
