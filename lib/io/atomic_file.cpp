// Atomic file writes (atomic_file.hpp): exclusive temporaries under random names, the checked
// rename into place with the .prev rotation, and the removal of dead processes' temporaries.
#include "io/atomic_file.hpp"

#include "core/check.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace ompml::atomic_file {
namespace {

namespace fs = std::filesystem;

// Taken names are drawn again; this many in a row means the directory is full of our names
// (or the random part is forced by a test): give up with an error rather than loop.
constexpr int kAttempts = 64;
constexpr std::size_t kRandomChars = 12; // 62^12 names: about 71 bits

std::mutex& random_mutex()
{
    static std::mutex m;
    return m;
}
std::function<std::string()>& forced_random_part()
{
    static std::function<std::string()> f;
    return f;
}

std::string random_part()
{
    std::lock_guard<std::mutex> guard(random_mutex());
    if (forced_random_part()) return forced_random_part()();
    static const char kAlphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::random_device rd; // the kernel's random source: nothing a neighbour can derive from pid or time
    std::uniform_int_distribution<int> pick(0, 61);
    std::string s(kRandomChars, '0');
    for (char& c : s) c = kAlphabet[pick(rd)];
    return s;
}

// "F.tmp.<host>.<pid>.<random>": a fresh temporary name for F.
std::string temp_name(const std::string& path)
{
    return path + ".tmp." + host_name() + "." + std::to_string(::getpid()) + "." + random_part();
}

// Calls attempt(name) with fresh temporary names of `path` until it returns true; false means
// the name was taken. Returns the name that worked.
std::string with_fresh_name(const std::string& path, const std::function<bool(const std::string& name)>& attempt)
{
    std::string name;
    for (int i = 0; i < kAttempts; ++i)
        if (attempt(name = temp_name(path))) return name;
    throw Error(path + ": cannot create a temporary file beside it: " + std::to_string(kAttempts) +
                " names tried were all taken (the last: " + name + ")");
}

// "<dir>", "<name>" of a path; dir "." for a bare name.
std::pair<std::string, std::string> dir_and_name(const std::string& path)
{
    const fs::path p(path);
    const std::string dir = p.parent_path().string();
    return {dir.empty() ? std::string(".") : dir, p.filename().string()};
}

// fsync of a directory, so that a rename in it survives a crash. Some filesystems refuse fsync
// on directories (EINVAL); the rename is done all the same.
void fsync_dir(const std::string& dir)
{
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw Error(dir + ": cannot open the directory for fsync: " + std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL) throw Error(dir + ": fsync of the directory failed: " + std::strerror(err));
}

// Keeps the file at `path` as path.prev: a hard link under a temporary name, renamed over
// path.prev (replacing an older one, or a link there, atomically); a plain rename where hard
// links fail. Neither link(2) (flags 0: a link at path is linked as the link) nor rename(2)
// follows a symbolic link.
void keep_previous(const std::string& path)
{
    const std::string prev = path + ".prev";
    int link_error = 0;
    const std::string linked = with_fresh_name(prev, [&](const std::string& name) {
        if (::linkat(AT_FDCWD, path.c_str(), AT_FDCWD, name.c_str(), 0) == 0) return true;
        if (errno == EEXIST) return false;
        link_error = errno; // hard links do not work here
        return true;
    });
    if (link_error == 0) {
        if (::rename(linked.c_str(), prev.c_str()) == 0) return;
        const int err = errno;
        ::unlink(linked.c_str()); // our second name for path, made just now
        throw Error(path + ": cannot keep the previous file as " + prev + ": " + std::strerror(err));
    }
    if (::rename(path.c_str(), prev.c_str()) != 0)
        throw Error(path + ": cannot keep the previous file as " + prev + ": " + std::strerror(errno));
}

bool all_digits(const std::string& s)
{
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_random_part(const std::string& s)
{
    return s.size() == kRandomChars && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
           });
}

// The host and pid of a temporary's name after "F.tmp." or "F.prev.tmp.": "<host>.<pid>.<random>",
// or as older builds wrote them, "<host>.<pid>" and "<pid>" (this host's). A random part has
// 12 characters and a pid at most 9 digits, so the forms cannot be mistaken for each other.
bool parse_owner(std::string rest, std::string& host, std::string& pid)
{
    std::size_t dot = rest.rfind('.');
    if (dot != std::string::npos && is_random_part(rest.substr(dot + 1))) {
        rest.resize(dot);
        dot = rest.rfind('.');
        if (dot == std::string::npos) return false; // a random part needs host and pid before it
    }
    host = dot == std::string::npos ? host_name() : rest.substr(0, dot);
    pid = dot == std::string::npos ? rest : rest.substr(dot + 1);
    return all_digits(pid);
}

} // namespace

std::string host_name()
{
    static const std::string name = [] {
        char buf[256] = {0};
        if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
        return std::string(buf);
    }();
    return name;
}

void set_random_part(std::function<std::string()> next)
{
    std::lock_guard<std::mutex> guard(random_mutex());
    forced_random_part() = std::move(next);
}

int create_plain(const std::string& name)
{
    return ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
}

TempFile::TempFile(std::string path, const Create& create) : path_(std::move(path))
{
    remove_stale(path_);
    name_ = with_fresh_name(path_, [&](const std::string& name) {
        fd_ = create(name);
        if (fd_ >= 0) return true;
        if (errno == EEXIST) return false;
        throw Error(path_ + ": cannot create a file in " + dir_and_name(path_).first + ": " + std::strerror(errno));
    });
}

TempFile::~TempFile()
{
    if (fd_ < 0) return;
    if (!committed_ && still_ours()) ::unlink(name_.c_str());
    ::close(fd_);
}

bool TempFile::still_ours() const
{
    struct stat mine{}, there{};
    return ::fstat(fd_, &mine) == 0 && ::lstat(name_.c_str(), &there) == 0 && mine.st_dev == there.st_dev &&
        mine.st_ino == there.st_ino;
}

void TempFile::commit(const Options& opt)
{
    require(fd_ >= 0 && !committed_, path_ + ": commit of a temporary that is not open");
    if (::fsync(fd_) != 0) throw Error(name_ + ": fsync failed: " + std::strerror(errno));
    if (!still_ours())
        throw Error(path_ + ": its temporary " + name_ +
                    " was replaced by another entry while it was written (someone else writes in this "
                    "directory?); not renaming it into place");
    if (opt.keep_previous) {
        std::error_code ec;
        if (fs::exists(path_, ec) && (opt.keep_if ? opt.keep_if(path_) : fs::is_regular_file(path_, ec)))
            keep_previous(path_);
    }
    if (::rename(name_.c_str(), path_.c_str()) != 0)
        throw Error(path_ + ": cannot rename " + name_ + " into place: " + std::strerror(errno));
    committed_ = true;
    fsync_dir(dir_and_name(path_).first);
}

int TempFile::release()
{
    require(committed_, path_ + ": release of a temporary that is not committed");
    const int fd = fd_;
    fd_ = -1;
    return fd;
}

void write(const std::string& path, const std::function<void(int fd)>& fill, const Options& opt)
{
    TempFile tmp(path);
    fill(tmp.fd());
    tmp.commit(opt);
}

void write_bytes(const std::string& path, std::string_view bytes, const Options& opt)
{
    write(path, [&](int fd) { write_all(fd, bytes, path); }, opt);
}

void write_all(int fd, std::string_view bytes, const std::string& name)
{
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(name + ": write failed: " + (n < 0 ? std::strerror(errno) : "no progress"));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::vector<std::string> remove_stale(const std::string& path)
{
    const auto [dir, name] = dir_and_name(path);
    std::vector<std::string> removed;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string entry = it->path().filename().string();
        std::string rest;
        for (const std::string& prefix : {name + ".tmp.", name + ".prev.tmp."})
            if (entry.size() > prefix.size() && entry.compare(0, prefix.size(), prefix) == 0)
                rest = entry.substr(prefix.size());
        std::string host, pid;
        if (rest.empty() || !parse_owner(rest, host, pid)) continue;
        if (host != host_name()) continue; // another host's: its pids mean nothing here
        // Only a process that certainly does not exist: EPERM means it lives (as another user).
        if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;
        // Only our own regular files: never a link (or what it points to), never another user's.
        const std::string p = it->path().string();
        struct stat st{};
        if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
        if (::unlink(p.c_str()) == 0) removed.push_back(p);
    }
    return removed;
}

} // namespace ompml::atomic_file
