#ifndef STRATA_CROCKSDB_SHIM_H
#define STRATA_CROCKSDB_SHIM_H

// Debian's librocksdb-dev ships the C API in <rocksdb/c.h>; Swift imports it through this shim.
#include <rocksdb/c.h>

#endif
