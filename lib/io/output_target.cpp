// Which of ompml's kinds of file a path holds, and whether a writer may replace it
// (output_target.hpp).
#include "io/output_target.hpp"

#include "core/check.hpp"
#include "io/checkpoint.hpp"
#include "io/h5.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace ompml {

const char* const kConfigMarker = "# ompml-train configuration";

namespace {

namespace fs = std::filesystem;

// What an existing regular file is.
enum class Found {
    empty,
    checkpoint,
    dataset_ours,  // written by ompml-data
    dataset_other, // has /train or /test, made elsewhere
    predictions,
    hdf5_unopenable,
    hdf5_other,
    metrics,
    config,
    other, // neither HDF5 nor one of our text kinds
};

std::string first_bytes(const std::string& path, std::size_t n)
{
    std::ifstream in(path, std::ios::binary);
    std::string head(n, '\0');
    in.read(head.data(), static_cast<std::streamsize>(n));
    head.resize(static_cast<std::size_t>(in.gcount()));
    return head;
}

std::string first_line(const std::string& path)
{
    std::string head = first_bytes(path, 1 << 16);
    return head.substr(0, head.find('\n'));
}

std::string string_attr(hid_t obj, const char* name)
{
    if (!h5::has_attr(obj, name) || h5::attr_class(obj, name) != H5T_STRING) return "";
    return h5::get_attr_string(obj, name);
}

Found classify_hdf5(const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(h5::lock());
    h5::Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.valid()) {
        h5::error_text(); // clears HDF5's error stack
        return Found::hdf5_unopenable;
    }
    try {
        if (h5::exists(f, "config")) {
            const h5::Handle cfg = h5::open_group(f, "config");
            if (string_attr(cfg, "format") == "ompml-checkpoint") return Found::checkpoint; // an older build's
        }
        if (string_attr(f, "format") == "ompml-predictions") return Found::predictions;
        if (h5::exists(f, "train") || h5::exists(f, "test"))
            return string_attr(f, "created_by").rfind("ompml-data", 0) == 0 ? Found::dataset_ours
                                                                            : Found::dataset_other;
    } catch (const Error&) { // an odd attribute or group: not ours
    }
    return Found::hdf5_other;
}

Found classify(const std::string& path)
{
    std::error_code ec;
    if (fs::file_size(path, ec) == 0 && !ec) return Found::empty;
    if (first_bytes(path, std::strlen(kCheckpointMagic)) == kCheckpointMagic) return Found::checkpoint;
    {
        std::lock_guard<std::recursive_mutex> guard(h5::lock());
        if (H5Fis_hdf5(path.c_str()) > 0) return classify_hdf5(path);
        h5::error_text();
    }
    const std::string line = first_line(path);
    if (line == kConfigMarker) return Found::config;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && (j.contains("record") || j.contains("epoch"))) return Found::metrics;
    return Found::other;
}

bool own_kind(Found found, FileKind kind)
{
    switch (kind) {
    case FileKind::checkpoint: return found == Found::checkpoint;
    case FileKind::dataset: return found == Found::dataset_ours;
    case FileKind::predictions: return found == Found::predictions;
    case FileKind::metrics: return found == Found::metrics;
    case FileKind::config: return found == Found::config;
    }
    return false;
}

// What the file is, for the refusal: "is a dataset file (it has /train or /test)".
std::string description(Found found, FileKind kind)
{
    const std::string not_ours = std::string(", not an ompml ") + kind_name(kind);
    switch (found) {
    case Found::checkpoint: return "is an ompml checkpoint" + not_ours;
    case Found::dataset_ours: return "is a dataset file written by ompml-data" + not_ours;
    case Found::dataset_other:
        return kind == FileKind::dataset ? "is a dataset file that ompml-data did not write (it has /train or /test)"
                                         : "is a dataset file (it has /train or /test)" + not_ours;
    case Found::predictions: return "is an ompml predictions file" + not_ours;
    case Found::hdf5_unopenable:
        return "is an HDF5 file that cannot be opened, not a recognisable ompml " + std::string(kind_name(kind));
    case Found::hdf5_other:
        return kind == FileKind::checkpoint ? "is an HDF5 file without the ompml-checkpoint format tag"
                                            : "is an HDF5 file that ompml did not write";
    case Found::metrics: return "is an ompml metrics log" + not_ours;
    case Found::config: return "is an ompml-train config file" + not_ours;
    case Found::empty:
    case Found::other: break;
    }
    switch (kind) {
    case FileKind::metrics: return "is not an ompml metrics log (its first line is not an ompml JSON record)";
    case FileKind::config:
        return std::string("is not an ompml config file (its first line is not '") + kConfigMarker + "')";
    default: return std::string("is not an ompml ") + kind_name(kind) + " (not even an HDF5 file)";
    }
}

} // namespace

const char* kind_name(FileKind kind)
{
    switch (kind) {
    case FileKind::checkpoint: return "checkpoint";
    case FileKind::dataset: return "dataset file";
    case FileKind::predictions: return "predictions file";
    case FileKind::metrics: return "metrics log";
    case FileKind::config: return "config file";
    }
    return "file";
}

std::string replace_problem(const std::string& path, FileKind kind, bool force)
{
    std::error_code ec;
    const fs::file_status link = fs::symlink_status(path, ec);
    if (!fs::exists(link)) return "";
    const fs::file_status st = fs::status(path, ec); // through symbolic links
    std::string via;
    if (fs::is_symlink(link)) {
        via = " (it is a symbolic link to " + fs::read_symlink(path, ec).string() + ")";
        if (!fs::exists(st))
            return "is a symbolic link to " + fs::read_symlink(path, ec).string() + ", which does not exist";
    }
    if (fs::is_directory(st)) return "is a directory" + via;
    if (!fs::is_regular_file(st)) return "is not a regular file" + via;
    if (force) return "";
    const Found found = classify(path);
    if (found == Found::empty || own_kind(found, kind)) return "";
    return description(found, kind) + via;
}

std::string directory_problem(const std::string& path)
{
    const fs::path p(path);
    const std::string name = p.filename().string();
    if (name.empty() || name == "." || name == "..") return "names a directory, not a file";
    const std::string dir = p.parent_path().empty() ? std::string(".") : p.parent_path().string();
    std::error_code ec;
    if (!fs::exists(dir, ec)) return "directory " + dir + " does not exist";
    if (!fs::is_directory(dir, ec)) return dir + " is not a directory";
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return "cannot create files in directory " + dir + ": " + std::strerror(errno);
    return "";
}

void check_output(const std::string& path, FileKind kind, const std::string& what, const std::string& way_out,
                  bool force)
{
    if (const std::string why = directory_problem(path); !why.empty()) throw Error(what + " " + path + ": " + why);
    if (const std::string why = replace_problem(path, kind, force); !why.empty())
        throw Error(what + " " + path + " " + why + ": refusing to overwrite it; " + way_out);
}

} // namespace ompml
