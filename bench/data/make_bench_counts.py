"""Builds the real count data sets of the scVI benchmarks into bench/data/ (gitignored).

    /root/fixenv/bin/pip install rdata==1.1.0        # reads the R .rda files of the PBMC set
    /root/fixenv/bin/python bench/data/make_bench_counts.py [pbmc] [cbmc] [ding] [--from DIR]

With no names, builds all three. Without --from, the source files are downloaded from
raw.githubusercontent.com at the pinned commits below; with --from DIR they are read from DIR
(file names as in SOURCES). Every source file is checked against its sha256.
Not shipped and not used by CI: for comparing our scVI with scvi-tools on the same cells, the
same epochs and the same held-out cells (obs["split"], a fixed 90/10 split, numpy
default_rng(0)). X is always raw integer UMI counts (checked), CSR float32.

pbmc_frozen_sorted_5k.h5ad (PBMCs, 10x v1 chemistry, Zheng et al., Nat Commun 2017; via the
R package MUDAN, github.com/JEFworks/MUDAN, GPL-3):
  data/pbmcA.rda            dgCMatrix 13,939 genes x 2,896 cells, 10x "Frozen PBMCs (Donor A)"
  data/referenceCounts.rda  matrix 8,863 genes x 2,140 cells of 10x's bead-sorted PBMC
                            populations, with data/referenceAnnot.rda: their 9 sorted types
  -> 5,036 cells x the genes both have that are detected in >= 1 cell; obs["batch"] =
     "frozen_donor_a" / "sorted"; obs["cell_type"] = the sorted population (missing for the
     donor A cells).

cbmc_citeseq_8k.h5ad (cord blood mononuclear cells, CITE-seq, Stoeckius et al., Nat Methods
2017, GEO GSE100866; via github.com/ttgump/scDCC, Apache-2.0, the data of Tian et al., Nat
Commun 2021):
  data/CITE_PBMC/CITE_CBMC_counts_top2000.h5   X 8,617 cells x 2,000 genes (chosen by the
                            scDCC authors; no gene names in the file), Y 15 cluster labels,
                            ADT_X 10 normalised antibody values
  -> var names gene0000..gene1999; obs["cluster"] "1".."15"; obsm["adt_normalized"].

pbmc_dropseq_indrops.h5ad (PBMCs of one study measured by two technologies, Drop-seq and
inDrops, with the study's cell-type labels; Ding et al., Nat Biotechnol 2020, GEO GSE132044;
via the R package scAnnotate, github.com/cran/scAnnotate, GPL-3):
  data/pbmc1.rda  data frame 598 Drop-seq cells x (label "yy" + 2,000 genes)
  data/pbmc2.rda  data frame 644 inDrops cells x the same columns
  Both hold Seurat LogNormalize values of 2,000 HVGs; the integer counts are recovered
  exactly (each cell's smallest non-zero value is a count of 1, which gives the cell's total;
  every recovered value is checked to be an integer).
  -> 1,242 cells x 2,000 genes; obs["batch"] "Drop-seq" / "inDrops"; obs["cell_type"]
     (B cell, CD16+ monocyte, Cytotoxic T cell). No split column.
"""

import hashlib
import pathlib
import sys
import urllib.request

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = pathlib.Path(__file__).resolve().parent
MUDAN = "https://raw.githubusercontent.com/JEFworks/MUDAN/3636ed2f9a404cbdfcfdce5500384b59a72de666/data/"
SCDCC = "https://raw.githubusercontent.com/ttgump/scDCC/142e4e0370f4134751e92a160f95f97fce8db369/data/CITE_PBMC/"
SCANNOTATE = "https://raw.githubusercontent.com/cran/scAnnotate/df9145d8a8b3a8d6bb263919bd672b9bdd363046/data/"
SOURCES = {  # file name -> (URL, sha256)
    "pbmcA.rda": (MUDAN + "pbmcA.rda", "6d36da8505d38bb6f866e4a1a49e89b69e4f6d9312e85ce3da32eafa6e7b1aa8"),
    "referenceCounts.rda": (MUDAN + "referenceCounts.rda", "d44df269ab223db35a3ac0f46a08f623b61ffd46f44f110b34910724b932a8d6"),
    "referenceAnnot.rda": (MUDAN + "referenceAnnot.rda", "72ac3b67cb1f831c23a9ecc094451d93901a8f2ba30fa1089704482e5cb76865"),
    "CITE_CBMC_counts_top2000.h5": (
        SCDCC + "CITE_CBMC_counts_top2000.h5",
        "68f36cd64729b1ee853fe5f760dbc0a9238d52a18a8a076742883379cce98e9f",
    ),
    "pbmc1.rda": (SCANNOTATE + "pbmc1.rda", "9892213d04369683185e636c3a064b0cc12cef3afe0c7718a6a3191a2f05a16b"),
    "pbmc2.rda": (SCANNOTATE + "pbmc2.rda", "3dfe36b121b0ac188467b2b48e258af824729ed1b70f97b3f70796a92c7ff7c8"),
}
TEST_FRACTION = 0.1


def source(name: str, local_dir: pathlib.Path | None) -> pathlib.Path:
    url, sha256 = SOURCES[name]
    path = (local_dir or pathlib.Path("/tmp/bench_counts_download")) / name
    if not path.exists():
        assert local_dir is None, f"{path}: missing"
        path.parent.mkdir(parents=True, exist_ok=True)
        print("downloading", url)
        with urllib.request.urlopen(url) as response:
            path.write_bytes(response.read())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sha256, f"{path}: sha256 {digest}, expected {sha256}"
    return path


def check_counts(X: sp.csr_matrix, what: str) -> None:
    assert X.data.min() >= 0 and np.all(X.data == np.round(X.data)), f"{what}: not integer counts"


def add_split(obs: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    test = np.zeros(len(obs), dtype=bool)
    test[rng.permutation(len(obs))[: int(round(TEST_FRACTION * len(obs)))]] = True
    obs["split"] = pd.Categorical(np.where(test, "test", "train"), categories=["train", "test"])


def write(adata: ad.AnnData, name: str) -> None:
    target = HERE / name
    adata.write_h5ad(target, compression="gzip")
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    print(adata)
    print(f"cells {adata.n_obs}, genes {adata.n_vars}, nnz {adata.X.nnz}, total counts {int(totals.sum())}")
    print(f"counts per cell: median {np.median(totals):.0f}, min {totals.min():.0f}, max {totals.max():.0f}")
    for column in adata.obs.columns:
        print(f"{column}:", adata.obs[column].value_counts(dropna=False).sort_index().to_dict())
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"{target}: {target.stat().st_size / 1e6:.2f} MB, sha256 {digest}\n")


def build_pbmc(local_dir: pathlib.Path | None) -> None:
    import rdata  # pip install rdata==1.1.0

    def read(name: str):
        (value,) = rdata.read_rda(source(name, local_dir)).values()
        return value

    donor = read("pbmcA.rda")  # dgCMatrix: slots i, p, x, Dim, Dimnames (genes x cells)
    n_genes, n_cells = (int(d) for d in donor.Dim)
    donor_X = sp.csc_matrix((np.asarray(donor.x), np.asarray(donor.i), np.asarray(donor.p)), shape=(n_genes, n_cells))
    donor_genes = [str(g) for g in donor.Dimnames[0]]
    donor_cells = [str(c) for c in donor.Dimnames[1]]
    reference = read("referenceCounts.rda")  # dense genes x cells
    reference_genes = [str(g) for g in reference.coords[reference.dims[0]].values]
    reference_cells = [str(c) for c in reference.coords[reference.dims[1]].values]
    reference_X = sp.csr_matrix(np.asarray(reference.values))
    labels = [str(x) for x in read("referenceAnnot.rda")]
    assert len(labels) == len(reference_cells)

    shared = set(reference_genes)
    genes = [g for g in donor_genes if g in shared]
    donor_rows = {g: k for k, g in enumerate(donor_genes)}
    reference_rows = {g: k for k, g in enumerate(reference_genes)}
    X = sp.vstack(
        [
            donor_X.tocsr()[[donor_rows[g] for g in genes]].T.tocsr(),
            reference_X[[reference_rows[g] for g in genes]].T.tocsr(),
        ]
    ).tocsr()
    detected = np.asarray((X > 0).sum(axis=0)).ravel() > 0
    X = X[:, detected].astype(np.float32)
    check_counts(X, "pbmc")

    obs = pd.DataFrame(index=donor_cells + reference_cells)
    obs["batch"] = pd.Categorical(
        ["frozen_donor_a"] * len(donor_cells) + ["sorted"] * len(reference_cells), categories=["frozen_donor_a", "sorted"]
    )
    obs["cell_type"] = pd.Categorical([None] * len(donor_cells) + labels, categories=sorted(set(labels)))
    add_split(obs)
    adata = ad.AnnData(X=X, obs=obs)
    adata.var_names = [g for g, keep in zip(genes, detected) if keep]
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    write(adata, "pbmc_frozen_sorted_5k.h5ad")


def build_cbmc(local_dir: pathlib.Path | None) -> None:
    import h5py

    with h5py.File(source("CITE_CBMC_counts_top2000.h5", local_dir), "r") as f:
        counts = np.asarray(f["X"], dtype=np.float32)
        labels = np.asarray(f["Y"])
        adt = np.asarray(f["ADT_X"], dtype=np.float32)
    X = sp.csr_matrix(counts)
    check_counts(X, "cbmc")
    assert np.all(labels == np.round(labels))
    obs = pd.DataFrame(index=[f"cell{i:05d}" for i in range(X.shape[0])])
    obs["cluster"] = pd.Categorical(
        [str(int(y)) for y in labels], categories=[str(c) for c in sorted({int(y) for y in labels})]
    )
    add_split(obs)
    adata = ad.AnnData(X=X, obs=obs)
    adata.var_names = [f"gene{j:04d}" for j in range(X.shape[1])]
    adata.obsm["adt_normalized"] = adt
    write(adata, "cbmc_citeseq_8k.h5ad")


def build_ding(local_dir: pathlib.Path | None) -> None:
    import rdata  # pip install rdata==1.1.0

    parts = []
    for name, technology in (("pbmc1.rda", "Drop-seq"), ("pbmc2.rda", "inDrops")):
        (frame,) = rdata.read_rda(source(name, local_dir)).values()  # cells x ("yy" label + 2,000 genes)
        logged = frame.drop(columns="yy").to_numpy(np.float64)
        # Seurat's LogNormalize: log1p(count / cell total * 1e4), the total over all genes. A count
        # of 1 gives each cell's smallest non-zero value, which fixes its total; the integrality
        # check below fails if it does not.
        smallest = np.where(logged > 0, logged, np.inf).min(axis=1)
        totals = 1e4 / np.expm1(smallest)
        counts = np.expm1(logged) * totals[:, None] / 1e4
        assert np.abs(counts - np.round(counts)).max() < 1e-6, f"{name}: not LogNormalize of integer counts"
        part = ad.AnnData(X=sp.csr_matrix(np.round(counts).astype(np.float32)))
        part.obs_names = [str(c) for c in frame.index]
        part.var_names = [str(g) for g in frame.columns[1:]]
        part.obs["batch"] = technology
        part.obs["cell_type"] = frame["yy"].astype(str).to_numpy()
        parts.append(part)
    assert list(parts[0].var_names) == list(parts[1].var_names)
    adata = ad.concat(parts)
    check_counts(adata.X, "ding")
    for column in ("batch", "cell_type"):
        adata.obs[column] = pd.Categorical(adata.obs[column])
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    write(adata, "pbmc_dropseq_indrops.h5ad")


def main() -> None:
    args = sys.argv[1:]
    local_dir = None
    if "--from" in args:
        k = args.index("--from")
        local_dir = pathlib.Path(args[k + 1])
        del args[k : k + 2]
    names = args or ["pbmc", "cbmc", "ding"]
    builders = {"pbmc": build_pbmc, "cbmc": build_cbmc, "ding": build_ding}
    for name in names:
        builders[name](local_dir)


if __name__ == "__main__":
    main()
