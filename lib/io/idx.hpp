// IDX importer (the MNIST file format, also used by Fashion-MNIST): reads the four standard
// files of a directory, gzip-compressed or raw, and writes a dataset file (data/README.md):
// images uint8 (N, 28, 28), labels int32, classes = 10.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

// One decoded IDX file: dims as stored (e.g. {60000, 28, 28} or {60000}) and the bytes.
struct IdxArray {
    std::vector<std::uint64_t> dims;
    std::vector<std::uint8_t> data; // (dims[0], dims[1], ...) row-major
};

// Reads an IDX file of unsigned bytes (type code 0x08), gzip or raw (zlib reads both).
// Throws Error naming the file on a bad magic, a type other than ubyte, an unexpected rank
// (expected_rank 0: any), or a size that does not match the header (truncated or trailing bytes).
IdxArray read_idx(const std::string& path, int expected_rank);

// Writes an IDX file of unsigned bytes (dims as given), gzip-compressed when gzip is true:
// for test fixtures and for exporting.
void write_idx(const std::string& path, const std::vector<std::uint64_t>& dims, const std::vector<std::uint8_t>& data,
               bool gzip);

// The file in dir for a standard stem such as "train-images-idx3-ubyte": the first of
// stem, stem.gz and the same with '.' before "idx" (train-images.idx3-ubyte[.gz]) that exists.
std::string find_idx_file(const std::string& dir, const std::string& stem);

struct ImportReport {
    std::uint64_t train = 0, test = 0;
    std::vector<std::string> files;
};

// Imports train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from dir into out (written atomically). Labels must be < 10.
ImportReport import_idx(const std::string& dir, const std::string& out);

} // namespace ompml
