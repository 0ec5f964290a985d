// An info logger for RocksDB that never fails: the C API of Debian's librocksdb 7.8 has no way to plug in a logger,
// so this reaches Options through the C API's own wrapper struct (defined identically in rocksdb's c.cc).
#include "CRocksDBShim.h"

#include <rocksdb/env.h>
#include <rocksdb/options.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <sys/time.h>

struct rocksdb_options_t {
    rocksdb::Options rep;
};

namespace {

class TolerantLogger final : public rocksdb::Logger {
  public:
    TolerantLogger(std::string path, rocksdb::InfoLogLevel level, size_t max_bytes)
        : rocksdb::Logger(level), path_(std::move(path)), max_bytes_(max_bytes) {
        file_ = std::fopen(path_.c_str(), "a");
    }

    ~TolerantLogger() override {
        if (file_ != nullptr) std::fclose(file_);
    }

    bool opened() const { return file_ != nullptr; }

    using rocksdb::Logger::Logv;
    void Logv(const char *format, va_list arguments) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (file_ == nullptr) return;
        if (written_ >= max_bytes_) rotate();
        if (file_ == nullptr) return;
        struct timeval now;
        gettimeofday(&now, nullptr);
        struct tm local;
        localtime_r(&now.tv_sec, &local);
        char stamp[64];
        std::snprintf(stamp, sizeof stamp, "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", local.tm_year + 1900,
                      local.tm_mon + 1, local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec,
                      static_cast<long>(now.tv_usec));
        // Every failure (ENOSPC above all) just loses the line.
        int head = std::fputs(stamp, file_) >= 0 ? static_cast<int>(std::strlen(stamp)) : 0;
        int body = std::vfprintf(file_, format, arguments);
        std::fputc('\n', file_);
        if (std::fflush(file_) != 0) std::clearerr(file_);
        if (body > 0) written_ += static_cast<size_t>(head + body + 1);
    }

    rocksdb::Status Close() override { return rocksdb::Status::OK(); }

  private:
    void rotate() {
        std::fclose(file_);
        std::rename(path_.c_str(), (path_ + ".old").c_str());
        file_ = std::fopen(path_.c_str(), "a");
        written_ = 0;
    }

    std::string path_;
    size_t max_bytes_;
    size_t written_ = 0;
    std::FILE *file_ = nullptr;
    std::mutex mutex_;
};

}  // namespace

extern "C" int strata_rocksdb_set_tolerant_info_log(rocksdb_options_t *options, const char *path, int level,
                                                    size_t max_bytes) {
    auto logger = std::make_shared<TolerantLogger>(path, static_cast<rocksdb::InfoLogLevel>(level), max_bytes);
    bool opened = logger->opened();
    options->rep.info_log = std::move(logger);
    return opened ? 0 : -1;
}
