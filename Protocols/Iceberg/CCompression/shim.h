// The decompressors Avro files use (deflate, snappy, zstandard), from Debian's zlib1g-dev, libsnappy-dev and
// libzstd-dev (which librocksdb-dev depends on too).
#include <zlib.h>
#include <snappy-c.h>
#include <zstd.h>
