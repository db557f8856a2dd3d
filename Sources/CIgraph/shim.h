// libigraph (Debian libigraph-dev) for Leiden and Louvain clustering.
//
// igraph.h defines _GNU_SOURCE before its own includes, which changes how glibc declares
// types such as fd_set. Including those glibc headers first, without it, keeps their
// definitions identical to the ones other C modules (CHDF5, Glibc) see, so the modules can be
// imported together.
#ifndef CIGRAPH_SHIM_H
#define CIGRAPH_SHIM_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/select.h>
#include <igraph.h>
#endif
