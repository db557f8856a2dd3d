#!/usr/bin/env python3
"""Rebuilds the inputs of the simulated scATAC data set (Genomics.SimulatedATAC) in this folder.

1. hg19_chr22_20-21Mb.fa: the GRCh37/hg19 chr22:20,000,001-21,000,000 piece that Debian's hisat2
   package ships as an example reference (usr/share/doc/hisat2/examples/reference/22_20-21M.fa).
       apt-get download hisat2 && dpkg -x hisat2_*.deb hisat2
       python make_inputs.py hisat2/usr/share/doc/hisat2/examples/reference/22_20-21M.fa
   The record is renamed from '22:20000001-21000000' to 'chr22_20M' (one plain name, so peak names
   such as chr22_20M:1000-1500 parse) and rewrapped at 60 bases per line (it already is).
2. motifs.jaspar / motifs.meme: JASPAR2026 CORE motifs of the TFs the simulation uses, from the
   pyjaspar 4.0.0 database (pip install pyjaspar==4.0.0). MEME text as jaspar2meme writes it
   (probabilities = counts / column sum).
"""
import os
import sys

import numpy as np
from Bio import motifs as biomotifs
from pyjaspar import jaspardb

HERE = os.path.dirname(os.path.abspath(__file__))
# TF -> JASPAR2026 matrix id (the CORE vertebrate matrix with the TF's name).
MOTIFS = {
    "PAX5": "MA0014.4", "EBF1": "MA0154.5",   # B cells
    "TCF7": "MA0769.3", "RUNX3": "MA0684.3",  # T cells
    "SPI1": "MA0080.5", "CEBPB": "MA0466.4",  # monocytes
    "GATA1": "MA0035.5", "KLF1": "MA0493.3",  # erythroid
    "CTCF": "MA0139.2",                       # every cell type
}


def write_genome(source):
    lines = open(source).read().split("\n")
    assert lines[0].startswith(">22:20000001-21000000"), lines[0]
    seq = "".join(lines[1:])
    assert len(seq) == 1_000_000
    with open(os.path.join(HERE, "hg19_chr22_20-21Mb.fa"), "w") as f:
        f.write(">chr22_20M hg19 chr22:20000001-21000000 (from Debian hisat2 examples)\n")
        for i in range(0, len(seq), 60):
            f.write(seq[i : i + 60] + "\n")


def write_motifs():
    db = jaspardb(release="JASPAR2026")
    found = []
    for tf, matrix_id in MOTIFS.items():
        m = db.fetch_motif_by_id(matrix_id)
        assert m.name == tf and "9606" in m.species, (matrix_id, m.name, m.species)
        found.append(m)
    with open(os.path.join(HERE, "motifs.jaspar"), "w") as f:
        f.write(biomotifs.write(found, "jaspar"))
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in found:
        counts = np.array([m.counts[b] for b in "ACGT"], dtype=float)
        probs = counts / counts.sum(axis=0)
        lines.append(f"MOTIF {m.matrix_id} {m.name}")
        lines.append(f"letter-probability matrix: alength= 4 w= {probs.shape[1]} nsites= {int(counts.sum(axis=0)[0])} E= 0")
        lines += [" " + "  ".join(f"{p:.6f}" for p in col) for col in probs.T]
        lines.append("")
    with open(os.path.join(HERE, "motifs.meme"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    write_genome(sys.argv[1])
    write_motifs()
