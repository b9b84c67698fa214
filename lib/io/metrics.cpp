// JSONL metrics writer. The file is created like every file ompml writes (io/atomic_file.hpp)
// and then appended to through that descriptor; a resumed run appends to the file it finds,
// never through a symbolic link.
#include "io/metrics.hpp"

#include "core/check.hpp"
#include "io/atomic_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ompml {

double json_float(float v)
{
    char buf[32];
    for (int digits = 6; digits <= 9; ++digits) { // 9 always reads back as the same float
        std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(v));
        if (std::strtof(buf, nullptr) == v) break;
    }
    return std::strtod(buf, nullptr);
}

namespace {

// A new, empty file at path (replacing what was there, a symbolic link as a link), open for writing.
int create_empty(const std::string& path)
{
    atomic_file::TempFile tmp(path);
    tmp.commit();
    return tmp.release();
}

// The existing file at path, open for appending (a missing one is created). Not through a
// symbolic link: in a directory others can write, a link planted at the path would send our
// lines into whatever file it names. O_NONBLOCK: a FIFO planted there fails instead of waiting.
int open_for_append(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT) return create_empty(path);
        if (err == ELOOP)
            throw Error(path + ": is a symbolic link: refusing to append through it (name the file itself)");
        throw Error(path + ": cannot open for appending: " + std::strerror(err));
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || ::fcntl(fd, F_SETFL, O_APPEND) != 0) {
        ::close(fd);
        throw Error(path + ": not a regular file: refusing to append to it");
    }
    return fd;
}

} // namespace

MetricsLog::MetricsLog(const std::string& path, bool append) : path_(path)
{
    try {
        const int fd = append ? open_for_append(path) : create_empty(path);
        f_ = ::fdopen(fd, "a");
        if (f_ == nullptr) {
            const int err = errno;
            ::close(fd);
            throw Error(path + ": cannot open for writing: " + std::strerror(err));
        }
    } catch (const Error& e) {
        throw Error(std::string("--metrics ") + e.what());
    }
}

MetricsLog::~MetricsLog()
{
    if (f_ != nullptr) std::fclose(f_);
}

void MetricsLog::write(const JsonRecord& record)
{
    // dump(): non-finite numbers become null; invalid UTF-8 in a string is replaced, not thrown.
    const std::string line = record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
        throw Error(path_ + ": write failed: " + std::strerror(errno));
}

} // namespace ompml
