// IDX reader and importer. The header is: two zero bytes, a type code (0x08 = unsigned byte),
// the rank, then rank big-endian uint32 dims; the payload follows, row-major. zlib's gzread
// reads gzip and raw files alike, so one code path serves both.
#include "io/idx.hpp"

#include "core/check.hpp"
#include "io/dataset.hpp"

#include <zlib.h>

#include <filesystem>

namespace ompml {
namespace {

class GzFile {
public:
    explicit GzFile(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb"))
    {
        if (f_ == nullptr) throw Error(path + ": cannot open");
        gzbuffer(f_, 1 << 20);
    }
    ~GzFile() { gzclose(f_); }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;

    // Reads up to n bytes; returns how many (fewer only at the end of the data).
    std::size_t read(void* out, std::size_t n)
    {
        std::size_t got = 0;
        auto* p = static_cast<unsigned char*>(out);
        while (got < n) {
            const unsigned ask = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 30));
            const int r = gzread(f_, p + got, ask);
            if (r < 0) {
                int errnum = 0;
                const char* msg = gzerror(f_, &errnum);
                throw Error(path_ + ": read failed: " + (msg != nullptr ? msg : "zlib error"));
            }
            if (r == 0) break;
            got += static_cast<std::size_t>(r);
        }
        return got;
    }

private:
    std::string path_;
    gzFile f_;
};

} // namespace

IdxArray read_idx(const std::string& path, int expected_rank)
{
    if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
    GzFile f(path);
    unsigned char head[4];
    if (f.read(head, 4) != 4) throw Error(path + ": too short for an IDX header");
    if (head[0] != 0 || head[1] != 0) throw Error(path + ": not an IDX file (bad magic)");
    if (head[2] != 0x08)
        throw Error(path + ": IDX type code " + std::to_string(head[2]) + ", expected 8 (unsigned byte)");
    if (expected_rank > 0 && head[3] != expected_rank)
        throw Error(path + ": IDX rank " + std::to_string(head[3]) + ", expected " + std::to_string(expected_rank));
    if (head[3] == 0) throw Error(path + ": IDX rank 0 (no dims)");

    IdxArray a;
    std::uint64_t total = 1;
    for (int i = 0; i < head[3]; ++i) {
        unsigned char b[4];
        if (f.read(b, 4) != 4) throw Error(path + ": truncated IDX header");
        const std::uint64_t d =
            (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) | (std::uint64_t{b[2]} << 8) | b[3];
        a.dims.push_back(d);
        total *= d;
    }
    require(total <= (std::uint64_t{1} << 36), path + ": IDX header claims " + std::to_string(total) + " bytes");
    a.data.resize(total);
    const std::size_t got = f.read(a.data.data(), total);
    if (got != total)
        throw Error(path + ": truncated: header says " + std::to_string(total) + " data bytes, found " +
                    std::to_string(got));
    unsigned char extra;
    if (f.read(&extra, 1) != 0)
        throw Error(path + ": trailing bytes after the " + std::to_string(total) + " data bytes the header declares");
    return a;
}

void write_idx(const std::string& path, const std::vector<std::uint64_t>& dims, const std::vector<std::uint8_t>& data,
               bool gzip)
{
    std::uint64_t total = 1;
    std::vector<unsigned char> head{0, 0, 0x08, static_cast<unsigned char>(dims.size())};
    for (auto d : dims) {
        require(d < (std::uint64_t{1} << 32), path + ": IDX dims must fit in 32 bits");
        for (int shift = 24; shift >= 0; shift -= 8) head.push_back(static_cast<unsigned char>(d >> shift));
        total *= d;
    }
    require(total == data.size(),
            path + ": " + std::to_string(data.size()) + " bytes for dims of " + std::to_string(total) + " elements");
    gzFile f = gzopen(path.c_str(), gzip ? "wb6" : "wbT"); // T: plain, uncompressed output
    if (f == nullptr) throw Error(path + ": cannot create");
    bool ok = gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size());
    for (std::size_t off = 0; ok && off < data.size(); off += 1u << 30) {
        const unsigned n = static_cast<unsigned>(std::min<std::size_t>(data.size() - off, 1u << 30));
        ok = gzwrite(f, data.data() + off, n) == static_cast<int>(n);
    }
    ok = (gzclose(f) == Z_OK) && ok;
    if (!ok) throw Error(path + ": write failed");
}

std::string find_idx_file(const std::string& dir, const std::string& stem)
{
    std::string dotted = stem;
    if (const auto pos = dotted.rfind("-idx"); pos != std::string::npos) dotted[pos] = '.';
    for (const std::string& name : {stem, stem + ".gz", dotted, dotted + ".gz"}) {
        const auto p = std::filesystem::path(dir) / name;
        if (std::filesystem::is_regular_file(p)) return p.string();
    }
    throw Error(dir + ": no " + stem + " or " + stem + ".gz");
}

ImportReport import_idx(const std::string& dir, const std::string& out)
{
    if (!std::filesystem::is_directory(dir)) throw Error(dir + ": not a directory");
    constexpr int kClasses = 10;
    struct Part {
        Split split;
        IdxArray images, labels;
    };
    ImportReport rep;
    std::vector<Part> parts;
    for (const auto& [split, prefix] : {std::pair{Split::train, "train"}, std::pair{Split::test, "t10k"}}) {
        const std::string ipath = find_idx_file(dir, std::string(prefix) + "-images-idx3-ubyte");
        const std::string lpath = find_idx_file(dir, std::string(prefix) + "-labels-idx1-ubyte");
        Part p{split, read_idx(ipath, 3), read_idx(lpath, 1)};
        if (p.images.dims[0] != p.labels.dims[0])
            throw Error(ipath + ": " + std::to_string(p.images.dims[0]) + " images but " + lpath + " has " +
                        std::to_string(p.labels.dims[0]) + " labels");
        if (p.images.dims[0] == 0) throw Error(ipath + ": no images");
        for (std::size_t i = 0; i < p.labels.data.size(); ++i)
            if (p.labels.data[i] >= kClasses)
                throw Error(lpath + ": label " + std::to_string(p.labels.data[i]) + " at row " + std::to_string(i) +
                            " >= classes (10)");
        rep.files.push_back(ipath);
        rep.files.push_back(lpath);
        (split == Split::train ? rep.train : rep.test) = p.images.dims[0];
        parts.push_back(std::move(p));
    }

    std::string source = "IDX files:";
    for (const auto& f : rep.files) source += " " + f;
    h5::create_atomically(out, [&](hid_t file) {
        for (const Part& p : parts) {
            const std::uint64_t n = p.images.dims[0];
            SplitWriter w(file, p.split, n, {p.images.dims[1], p.images.dims[2]}, h5::Dtype::u8);
            const std::vector<std::int32_t> labels(p.labels.data.begin(), p.labels.data.end());
            w.write(0, n, p.images.data.data(), labels.data());
        }
        set_dataset_attributes(file, kClasses, source, "ompml-data import-idx");
    });
    return rep;
}

} // namespace ompml
