"""Rebuilds data/pbmc68k_reduced.h5ad: integer counts of scanpy's pbmc68k_reduced.

    /root/fixenv/bin/python data/make_pbmc68k_reduced.py

Source: the file 10x_pbmc68k_reduced.h5ad inside the scanpy wheel (scanpy/datasets/, the data
behind `scanpy.datasets.pbmc68k_reduced()`): 700 cells of 10x Genomics' "Fresh 68k PBMCs
(Donor A)" data set, with `raw.X` = log1p of counts normalised to 10,000 per cell and
`obs["n_counts"]` = the cell's total count before normalisation. The counts are recovered as
round(expm1(raw.X) * n_counts / 1e4); the script checks that this is within 0.25 of an
integer everywhere (raw.X is
float32, so large counts carry rounding error; the largest deviation, 0.08, is printed).

Output: X = counts (CSR float32, 700 × 765 genes of raw), obs = bulk_labels (10 categories),
n_genes, percent_mito, n_counts; var = gene names.
"""

import pathlib

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    source = pathlib.Path(sc.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    reduced = ad.read_h5ad(source)
    raw = reduced.raw.to_adata()
    lognorm = raw.X.toarray() if sp.issparse(raw.X) else np.asarray(raw.X)
    scaled = np.expm1(lognorm.astype(np.float64)) * reduced.obs["n_counts"].to_numpy()[:, None] / 1e4
    counts = np.round(scaled)
    deviation = np.abs(scaled - counts).max()
    assert deviation < 0.25, f"counts are not integers after recovery (max deviation {deviation})"
    print(f"max |recovered - round| = {deviation:.4f}")

    obs = reduced.obs[["bulk_labels", "n_genes", "percent_mito", "n_counts"]].copy()
    out = ad.AnnData(X=sp.csr_matrix(counts.astype(np.float32)), obs=obs)
    out.var_names = raw.var_names
    out.write_h5ad(HERE / "pbmc68k_reduced.h5ad", compression="gzip")
    print(out)
    print("bulk_labels:", obs["bulk_labels"].cat.categories.size, "categories")


if __name__ == "__main__":
    main()
