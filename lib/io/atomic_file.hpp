// Atomic file writes that other users cannot hijack: the one way ompml writes a file (its
// checkpoints and their .prev rotation, dataset files, the trace, the metrics log). A file F is
// written under a temporary name beside it and renamed over F when complete, so F is always
// the old file or the whole new one, never half of one.
//
// Checkpoints go to directories a whole group can write (a project's folder, mode 2770), where
// the kernel's protected_symlinks does not apply and any member can plant entries. So:
// - A temporary is created exclusively under a name nobody can predict,
//   "F.tmp.<host>.<pid>.<12 random letters and digits>" (O_CREAT | O_EXCL | O_NOFOLLOW, or HDF5's
//   H5F_ACC_EXCL, which opens the same way). A name that is taken, by a file, a directory or a
//   symbolic link, is never opened for writing, truncated or removed: another name is drawn.
// - After creation the file is written, fsync'ed and checked only through its descriptor,
//   never reopened by name, and it is renamed into place only while its name still holds it.
// - rename(2) replaces a symbolic link found at F (or F.prev) and never writes through it.
// - The host and pid in the name let a later run tell a dead process's leftovers from a live
//   one's (remove_stale); the random part makes the name unpredictable.
// One process creates, writes and renames each file (under MPI, rank 0 writes checkpoints, the
// trace and the metrics; the others wait in the next collective, and a failure there ends the
// job through abort_all), so a temporary's name is never shared between ranks. A collective
// writer (MPI-IO) would have to broadcast the name its root drew, and agree on errors.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ompml::atomic_file {

// This host's name (gethostname; "localhost" when it has none), as temporary names hold it.
std::string host_name();

// Makes the file `name` exclusively and returns a writable descriptor of it, or -1 with errno
// set: EEXIST when the name is taken (anything at all is there, a symbolic link included; then
// another name is drawn), anything else is an error. It may also throw Error itself.
// create_plain: open(O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW), mode 0666 less the umask.
using Create = std::function<int(const std::string& name)>;
int create_plain(const std::string& name);

struct Options {
    // Keep the file being replaced as "F.prev" (ompml-train's checkpoint rotation), but only
    // when keep_if(F) says it is worth keeping (default: it is a regular file); otherwise it is
    // simply replaced. It is hard-linked to F.prev (through a temporary name, like F's) before
    // the new file is renamed over F, so F never disappears; where hard links fail (some network
    // filesystems) F is renamed to F.prev, leaving a moment in which only F.prev exists.
    bool keep_previous = false;
    std::function<bool(const std::string& path)> keep_if;
};

// A new temporary file beside `path`, to be renamed over it by commit(). Destroyed without a
// commit (an error on the way), it removes the temporary, if its name still holds it.
class TempFile {
public:
    // Removes stale temporaries of `path` (remove_stale), then creates a temporary with
    // `create`. Throws Error naming `path` when no temporary can be created.
    explicit TempFile(std::string path, const Create& create = create_plain);
    ~TempFile();
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    int fd() const { return fd_; }
    const std::string& name() const { return name_; } // the temporary's path
    const std::string& path() const { return path_; }

    // fsync, the .prev rotation, rename over path, fsync of the directory: afterwards path holds
    // this file, also after a crash. Refuses (Error naming path) when the temporary's name no
    // longer holds this file (someone replaced it); the temporary is then left alone.
    void commit(const Options& opt = {});
    // After commit: hands the descriptor (now of the file at path) to the caller, who closes it.
    int release();

private:
    bool still_ours() const; // the temporary's name still holds the file fd_ refers to

    std::string path_, name_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes `path` atomically: fill(fd) writes the new contents into a TempFile, which is
// committed when fill returns and removed when it throws.
void write(const std::string& path, const std::function<void(int fd)>& fill, const Options& opt = {});
// The same with the whole contents at hand (the trace).
void write_bytes(const std::string& path, std::string_view bytes, const Options& opt = {});
// Writes all of `bytes` at fd's offset (short writes continued); throws Error naming `name`.
void write_all(int fd, std::string_view bytes, const std::string& name);

// Removes temporaries of `path` left by processes that no longer exist: entries in path's
// directory named "<F>.tmp.<host>.<pid>.<random>" or "<F>.prev.tmp.<host>.<pid>.<random>"
// (and the names of older builds, "<F>.tmp.<host>.<pid>" and "<F>.tmp.<pid>", the latter taken
// as this host's) whose host is this one and whose pid certainly does not run (kill(pid, 0)
// fails with ESRCH), and which are regular files owned by this user. Symbolic links, other
// users' files, other hosts' and live processes' temporaries are never touched. Returns the
// paths removed.
std::vector<std::string> remove_stale(const std::string& path);

// Tests only: `next` replaces the random part of temporary names (a fixed sequence makes
// collisions happen on purpose); an empty function restores the random one.
void set_random_part(std::function<std::string()> next);

} // namespace ompml::atomic_file
