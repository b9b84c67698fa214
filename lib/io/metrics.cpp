// JSONL metrics writer. The file is created like every file ompml writes (io/atomic_file.hpp)
// and then appended to through that descriptor; a resumed run appends to the file it finds,
// never through a symbolic link.
#include "io/metrics.hpp"

#include "core/check.hpp"
#include "io/atomic_file.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ompml {
namespace {

// %.9g round-trips a float; lr is a float, so 7 digits print it as given (0.001, not 0.00100000005).
std::string num(double v, const char* f = "%.9g")
{
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

std::string extra_fields(const MetricsRecord& r)
{
    std::string out;
    for (const auto& [key, v] : r.extra) out += ", \"" + key + "\": " + num(v);
    return out;
}

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

std::string MetricsLog::to_json(const MetricsRecord& r)
{
    return "{\"epoch\": " + std::to_string(r.epoch) + ", \"step\": " + std::to_string(r.step) +
        ", \"train_loss\": " + num(r.train_loss) + ", \"test_loss\": " + num(r.test_loss) +
        ", \"test_acc\": " + num(r.test_acc) + ", \"lr\": " + num(static_cast<float>(r.lr), "%.7g") +
        ", \"seconds\": " + num(r.seconds) + ", \"samples_per_s\": " + num(r.samples_per_s) + extra_fields(r) + "}";
}

void MetricsLog::write(const MetricsRecord& r)
{
    const std::string line = to_json(r) + "\n";
    if (std::fputs(line.c_str(), f_) < 0 || std::fflush(f_) != 0)
        throw Error(path_ + ": write failed: " + std::strerror(errno));
}

} // namespace ompml
