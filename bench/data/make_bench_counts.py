"""Builds bench/data/cbmc_citeseq_8k.h5ad, the real count data set of the scVI benchmarks.

    /root/fixenv/bin/python bench/data/make_bench_counts.py                # downloads the source
    /root/fixenv/bin/python bench/data/make_bench_counts.py PATH/TO/CITE_CBMC_counts_top2000.h5

Not shipped and not used by CI (the output is gitignored): it is for comparing our scVI with
scvi-tools on the same cells, the same epochs and the same held-out cells.

Source: data/CITE_PBMC/CITE_CBMC_counts_top2000.h5 of github.com/ttgump/scDCC at commit
142e4e0370f4134751e92a160f95f97fce8db369 (sha256 below; Apache-2.0 repository, the data file of
the scDCC paper, Tian et al., Nat Commun 2021). It holds the CITE-seq cord blood mononuclear
cells of Stoeckius et al., Nat Methods 2017 (GEO GSE100866; the 8,617 cells of Seurat's CITE-seq
vignette): X = 8,617 cells x 2,000 genes of raw UMI counts (float32; the 2,000 genes chosen by
scDCC's authors; the file has no gene names), Y = 15 cluster labels (1..15, as the file has
them), ADT_X = 10 antibodies, already normalised (not counts).

Output: X = the counts as CSR float32 (checked to be non-negative integers); var names
gene0000..gene1999 (positions in the source); obs["cluster"] categorical ("1".."15");
obs["split"] = "train"/"test", a fixed 90/10 split (numpy default_rng(0)) so that every
implementation holds out the same cells; obsm["adt_normalized"] = ADT_X (float32).
"""

import hashlib
import pathlib
import sys
import urllib.request

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = pathlib.Path(__file__).resolve().parent
COMMIT = "142e4e0370f4134751e92a160f95f97fce8db369"
SOURCE_PATH = "data/CITE_PBMC/CITE_CBMC_counts_top2000.h5"
URL = f"https://raw.githubusercontent.com/ttgump/scDCC/{COMMIT}/{SOURCE_PATH}"
SHA256 = "68f36cd64729b1ee853fe5f760dbc0a9238d52a18a8a076742883379cce98e9f"
OUTPUT = HERE / "cbmc_citeseq_8k.h5ad"
TEST_FRACTION = 0.1


def source_file() -> pathlib.Path:
    if len(sys.argv) > 1:
        path = pathlib.Path(sys.argv[1])
    else:
        path = pathlib.Path("/tmp/bench_counts_download/CITE_CBMC_counts_top2000.h5")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            print("downloading", URL)
            with urllib.request.urlopen(URL) as response:
                path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == SHA256, f"{path}: sha256 {digest}, expected {SHA256}"
    return path


def main() -> None:
    with h5py.File(source_file(), "r") as f:
        counts = np.asarray(f["X"], dtype=np.float64)
        labels = np.asarray(f["Y"])
        adt = np.asarray(f["ADT_X"], dtype=np.float32)
    assert counts.min() >= 0 and np.all(counts == np.round(counts)), "X is not integer counts"
    assert np.all(labels == np.round(labels))
    n_cells, n_genes = counts.shape

    obs = pd.DataFrame(index=[f"cell{i:05d}" for i in range(n_cells)])
    obs["cluster"] = pd.Categorical(
        [str(int(y)) for y in labels], categories=[str(c) for c in sorted({int(y) for y in labels})]
    )
    rng = np.random.default_rng(0)
    test = np.zeros(n_cells, dtype=bool)
    test[rng.permutation(n_cells)[: int(round(TEST_FRACTION * n_cells))]] = True
    obs["split"] = pd.Categorical(np.where(test, "test", "train"), categories=["train", "test"])

    adata = ad.AnnData(X=sp.csr_matrix(counts.astype(np.float32)), obs=obs)
    adata.var_names = [f"gene{j:04d}" for j in range(n_genes)]
    adata.obsm["adt_normalized"] = adt
    adata.write_h5ad(OUTPUT, compression="gzip")

    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    print(adata)
    print(f"cells {n_cells}, genes {n_genes}, nnz {adata.X.nnz}, total counts {int(totals.sum())}")
    print(f"counts per cell: median {np.median(totals):.0f}, min {totals.min():.0f}, max {totals.max():.0f}")
    print("clusters:", obs["cluster"].value_counts().sort_index().to_dict())
    print("split:", obs["split"].value_counts().to_dict())
    print(f"{OUTPUT}: {OUTPUT.stat().st_size / 1e6:.2f} MB, sha256 {hashlib.sha256(OUTPUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
