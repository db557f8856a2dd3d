// libigraph (Debian libigraph-dev) for Leiden and Louvain clustering.
#ifndef CIGRAPH_SHIM_H
#define CIGRAPH_SHIM_H
#include <igraph.h>
#endif
