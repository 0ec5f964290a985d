#ifndef STRATA_CROCKSDBSHIM_H
#define STRATA_CROCKSDBSHIM_H

#include <rocksdb/c.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Gives `options` an info logger that appends to `path` and drops lines it cannot write (a full disk) instead of
/// failing: Debian's librocksdb 7.8 is built with assertions, and its own logger aborts the process on the first line
/// after a failed write. Rotates to `<path>.old` past `max_bytes`. `level` is RocksDB's InfoLogLevel (0 debug ...
/// 4 fatal). Returns 0, or -1 when the file cannot be opened (the logger then drops every line).
int strata_rocksdb_set_tolerant_info_log(rocksdb_options_t *options, const char *path, int level, size_t max_bytes);

#ifdef __cplusplus
}
#endif

#endif
