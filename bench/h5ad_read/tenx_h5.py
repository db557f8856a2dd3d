"""10x Genomics HDF5 read benchmark: Swift (`singlecell info`) vs `scanpy.read_10x_h5`, same file.

    swift build -c release --product singlecell
    PYTHON bench/h5ad_read/tenx_h5.py [--cells 20000] [--genes 33000] [--per-cell 2000] [--repeats 7]

PYTHON: an environment with scanpy and h5py. The file is written the way Cell Ranger (3 and
later) writes filtered_feature_bc_matrix.h5: matrix/data int32, indices int64, indptr int64,
shape int32, each 1-D in chunks of 80,000 with the byte shuffle and gzip level 1; barcodes and
features/{id,name,feature_type,genome} as fixed-width byte strings. Counts are Poisson-like
(seed 0), `--per-cell` genes per cell. Both sides are timed in-process around the read only, as
in bench.py; prints the medians and scanpy / Swift.
"""

import argparse
import pathlib
import subprocess
import tempfile

import h5py
import numpy as np
import scanpy as sc

from bench import python_median, swift_median  # bench/h5ad_read/bench.py

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_file(path, n_cells, n_genes, per_cell):
    rng = np.random.default_rng(0)
    indptr = np.arange(n_cells + 1, dtype=np.int64) * per_cell
    indices = np.concatenate([np.sort(rng.choice(n_genes, per_cell, replace=False)) for _ in range(n_cells)]).astype(np.int64)
    data = (rng.geometric(0.5, size=n_cells * per_cell)).astype(np.int32)
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        for name, values in [("data", data), ("indices", indices), ("indptr", indptr)]:
            m.create_dataset(name, data=values, chunks=(80_000,), maxshape=(None,), compression=1, shuffle=True)
        m.create_dataset("shape", data=np.array([n_genes, n_cells], dtype=np.int32))
        m.create_dataset("barcodes", data=np.array([f"AAAC{i:012d}-1".encode() for i in range(n_cells)]))
        feats = m.create_group("features")
        feats.create_dataset("id", data=np.array([f"ENSG{j:011d}".encode() for j in range(n_genes)]))
        feats.create_dataset("name", data=np.array([f"GENE{j}".encode() for j in range(n_genes)]))
        feats.create_dataset("feature_type", data=np.array([b"Gene Expression"] * n_genes))
        feats.create_dataset("genome", data=np.array([b"GRCh38"] * n_genes))
        feats.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=33_000)
    parser.add_argument("--per-cell", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/singlecell"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "filtered_feature_bc_matrix.h5"
        make_file(path, args.cells, args.genes, args.per_cell)
        subprocess.run([args.binary, "info", str(path)], check=True, capture_output=True)  # warm-up
        p = python_median(sc.read_10x_h5, path, args.repeats)
        s = swift_median(args.binary, path, args.repeats)
    print(f"file: {args.cells} cells x {args.genes} genes, {args.cells * args.per_cell} nonzeros, Cell Ranger layout; repeats {args.repeats}")
    print(f"swift read10xH5:     median {s * 1e3:.1f} ms")
    print(f"scanpy.read_10x_h5:  median {p * 1e3:.1f} ms")
    print(f"ratio scanpy / swift: {p / s:.2f}x")


if __name__ == "__main__":
    main()
