// Thin HDF5 layer: RAII handles, one H5_CHECK macro, and the few typed reads/writes ompml
// needs (whole datasets, row ranges, scalar/string attributes). HDF5's automatic error-stack
// printing is turned off; every failure becomes an ompml::Error naming the file and object.
#pragma once

#include "core/check.hpp"
#include "io/atomic_file.hpp"

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ompml::h5 {

// H5_CHECK's reporter: "HDF5 call H5Xyz failed: <HDF5's innermost message>". For calls that
// touch a user's file, prefer fail_on, which names the file and object.
[[noreturn]] void fail(const char* file, int line, const char* expr);
// Throws "<file>: <object>[ what]: <HDF5's message>", e.g.
// "data.h5: /train/images rows 128-255: cannot read: inflate() failed (corrupt compressed data?)".
[[noreturn]] void fail_on(hid_t obj, const std::string& what);
// HDF5's innermost message on the current error stack (which it clears), with a hint when the
// filter pipeline failed (compressed data that does not inflate).
std::string error_text();

// An hid_t that closes itself (H5Fclose, H5Dclose, ... chosen by H5Iget_type).
class Handle {
public:
    Handle() = default;
    explicit Handle(hid_t id) : id_(id) {}
    ~Handle() { reset(); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
    Handle& operator=(Handle&& o) noexcept
    {
        if (this != &o) {
            reset();
            id_ = std::exchange(o.id_, H5I_INVALID_HID);
        }
        return *this;
    }
    hid_t id() const { return id_; }
    operator hid_t() const { return id_; }
    bool valid() const { return id_ >= 0; }
    void reset();
    hid_t release() { return std::exchange(id_, H5I_INVALID_HID); } // gives up ownership, closes nothing

private:
    hid_t id_ = H5I_INVALID_HID;
};

enum class Dtype { u8, i32, i64, f32, f64, other };
const char* dtype_name(Dtype t);

// Element type of a C++ type, and its HDF5 native type.
template <class T>
constexpr Dtype dtype_of();
template <>
constexpr Dtype dtype_of<std::uint8_t>()
{
    return Dtype::u8;
}
template <>
constexpr Dtype dtype_of<std::int32_t>()
{
    return Dtype::i32;
}
template <>
constexpr Dtype dtype_of<std::int64_t>()
{
    return Dtype::i64;
}
template <>
constexpr Dtype dtype_of<float>()
{
    return Dtype::f32;
}
template <>
constexpr Dtype dtype_of<double>()
{
    return Dtype::f64;
}
hid_t native_type(Dtype t);

// Files. open_read checks that the path exists and is HDF5 first, with a clear message.
Handle open_read(const std::string& path);
Handle open_rw(const std::string& path);
Handle create(const std::string& path); // truncates: scratch files (tests); ompml writes through create_atomically

bool exists(hid_t loc, const std::string& path); // a link path like "train/images"
Handle open_group(hid_t loc, const std::string& path);
Handle create_group(hid_t loc, const std::string& path);
Handle open_dataset(hid_t loc, const std::string& path);

struct DatasetInfo {
    std::vector<std::uint64_t> dims;
    Dtype dtype = Dtype::other;
    std::uint64_t rows() const { return dims.empty() ? 0 : dims[0]; }
    std::uint64_t row_elems() const; // product of dims[1:]
};
DatasetInfo info(hid_t dataset);

// Writes a dataset of shape dims: create_dataset (contiguous, or with compress_level > 0 in
// chunks of chunk_rows_for rows, shuffle+gzip) and one write of all its rows.
void write(hid_t loc, const std::string& name, Dtype t, const void* data, const std::vector<std::uint64_t>& dims,
           int compress_level = 0);
template <class T>
void write(hid_t loc, const std::string& name, const std::vector<T>& v, std::vector<std::uint64_t> dims = {},
           int compress_level = 0)
{
    if (dims.empty()) dims = {v.size()};
    write(loc, name, dtype_of<T>(), v.data(), dims, compress_level);
}

// Reads rows [row0, row0 + nrows) of a dataset into out (converting to T's type).
void read_rows(hid_t dataset, Dtype t, std::uint64_t row0, std::uint64_t nrows, void* out);
template <class T>
std::vector<T> read_all(hid_t loc, const std::string& name)
{
    Handle ds = open_dataset(loc, name);
    const DatasetInfo di = info(ds);
    std::vector<T> v(di.rows() * di.row_elems());
    if (!v.empty()) read_rows(ds, dtype_of<T>(), 0, di.rows(), v.data());
    return v;
}

// Attributes on any object: integers, doubles and strings. The getters read attributes holding
// exactly one value (a scalar or a one-element array) and throw Error naming the file, object
// and attribute otherwise.
void set_attr(hid_t obj, const std::string& name, std::int64_t v);
void set_attr(hid_t obj, const std::string& name, double v);
void set_attr(hid_t obj, const std::string& name, const std::string& v);
bool has_attr(hid_t obj, const std::string& name);
std::int64_t get_attr_int(hid_t obj, const std::string& name);
double get_attr_double(hid_t obj, const std::string& name);
std::string get_attr_string(hid_t obj, const std::string& name);

// The path of the file an object lives in (for error messages).
std::string file_name(hid_t obj);

// ---- Thread safety ----------------------------------------------------------------------------
// Debian's HDF5 is built without thread safety, and a streaming Loader reads the file from a
// background thread. Every wrapper in this file holds lock() while it calls HDF5; code that
// calls the HDF5 C API directly (H5Dwrite, H5Fclose through a raw hid_t, ...) must hold it too
// whenever a loader thread may be running, e.g.
//     std::lock_guard<std::recursive_mutex> guard(h5::lock());
// It is recursive so that a caller may hold it around a sequence of wrapper calls.
std::recursive_mutex& lock();

// ---- Additions for dataset files (chunked writes, row sets, attribute listing) ---------------

// Exact description of a dataset's element type for messages: "uint8", "int16", "float64",
// "string", "compound", ... (info().dtype folds all integers it cannot name into int64).
std::string type_name(hid_t dataset);

// The one chunking rule of the files we write: chunks of whole rows, about 256 KiB each: small
// enough that a streaming read of random rows inflates little it does not need, big enough to
// compress well (64 Ki labels of int32; 334 Fashion-MNIST images of 784 bytes).
std::uint64_t chunk_rows_for(Dtype t, const std::vector<std::uint64_t>& dims);

// Creates a dataset of shape dims without writing it, with no recorded times (reproducible
// bytes); chunked by chunk_rows whole rows and shuffle+gzip compressed when compress_level > 0
// (chunk_rows 0: contiguous, no compression). One write path: write() and SplitWriter use it.
// Object modification times are not recorded, so the same data gives the same file bytes.
Handle create_dataset(hid_t loc, const std::string& name, Dtype t, const std::vector<std::uint64_t>& dims,
                      std::uint64_t chunk_rows, int compress_level);
// Writes rows [row0, row0 + nrows) of a dataset from contiguous host memory of type t.
void write_rows(hid_t dataset, Dtype t, std::uint64_t row0, std::uint64_t nrows, const void* data);
// Creates a group without recorded times (see create_dataset).
Handle create_group_untimed(hid_t loc, const std::string& path);

// Reads the rows listed in `rows` (strictly increasing) into out, contiguous in that order,
// with one H5Dread per run of consecutive rows (faster than one read of a hyperslab union
// on HDF5 1.10: 0.7 s vs 11 s for a Fashion-MNIST epoch of 128-row batches).
void read_row_set(hid_t dataset, Dtype t, const std::vector<std::uint64_t>& rows, void* out);

// True when the dataset is stored through filters (compression, shuffle, ...).
bool is_filtered(hid_t dataset);
// Rows per chunk of a chunked dataset (its first chunk dim); 0 when it is not chunked.
std::uint64_t chunk_rows(hid_t dataset);

// Sets the chunk cache of an open dataset's file access (bytes, hash slots). Used by streaming
// reads, whose random rows would otherwise re-inflate the same chunk many times.
Handle open_dataset_cached(hid_t loc, const std::string& path, std::size_t cache_bytes);

// ---- Parallel HDF5: the MPI-IO file driver -----------------------------------------------------
// These need an HDF5 built with parallel support (H5_HAVE_PARALLEL, Debian's libhdf5-openmpi);
// with a serial HDF5 they throw, and kHaveParallel tells callers not to try.
extern const bool kHaveParallel;

// Collective over comm: opens an HDF5 file read-only through the MPI-IO driver. HDF5 keeps its
// own duplicate of comm (H5Pset_fapl_mpio and the file open each duplicate it), so the file's
// collectives never match other traffic on comm, e.g. another thread's allreduce. Every rank
// must call it (check the file on each rank first: a rank that throws before the call leaves
// the others waiting in it). Closing the file (and its datasets) is collective too.
Handle open_read_mpio(const std::string& path, MPI_Comm comm);

// Collective over the file's communicator: read_row_set as one collective H5Dread of the union
// of the row runs (H5FD_MPIO_COLLECTIVE). Every rank calls it for the same read, a rank without
// rows too (it joins with an empty selection).
void read_row_set_collective(hid_t dataset, Dtype t, const std::vector<std::uint64_t>& rows, void* out);

// Takes an object of an MPI-IO file out of the caller's hands and closes it when MPI_Finalize
// runs instead: on an error path the collective close could wait forever for ranks that are
// not closing it (they are about to be aborted), while ranks that all fail together still
// close it, collectively, inside MPI_Finalize. Objects close in the order given (datasets
// before their file).
void close_at_mpi_finalize(Handle& object);

// Names of an object's attributes (creation order is not tracked: alphabetical), and any
// attribute's value as text ("10", "0.5", "a string", "[3 values]").
std::vector<std::string> attr_names(hid_t obj);
std::string attr_text(hid_t obj, const std::string& name); // arrays of up to 8 numbers as "[3, 5]"
// Number of values an attribute holds (1 for a scalar).
std::int64_t attr_size(hid_t obj, const std::string& name);
// HDF5 class of an attribute: H5T_INTEGER, H5T_FLOAT, H5T_STRING, ...
H5T_class_t attr_class(hid_t obj, const std::string& name);

// ---- Storage checks ------------------------------------------------------------------------------

// Throws Error when a dataset does not store the data its shape claims, before anything reads
// it: "data.h5: /train/labels: claims 4000000000 rows (16000000000 bytes) but stores only 0 of
// its 61036 chunks: truncated or damaged?". A chunked dataset must have every chunk allocated
// (chunks are counted, not bytes summed: gzip shrinks a chunk of zeros ~1000x); a contiguous
// one its whole extent, inside the file. Reads only the chunk index, so a file that claims
// billions of rows fails in milliseconds instead of after minutes of fill values.
void require_stored(hid_t dataset);

// ---- Atomic creation --------------------------------------------------------------------------

// keep_previous and keep_if (the checkpoint rotation, atomic_file::Options), and:
struct AtomicOptions : atomic_file::Options {
    // Bytes for the start of the file, in an HDF5 user block (512 bytes, or the next power of
    // two that holds them), which HDF5 and h5py skip. Empty: no user block.
    std::string user_block;
};

// Creates the HDF5 file `path` atomically (io/atomic_file.hpp): fill(file) writes into a new
// temporary beside it, created exclusively (H5F_ACC_EXCL) under an unpredictable name, which
// is closed, fsync'ed and renamed over path only when fill returns; on any error the temporary
// is removed and the error rethrown, so no half-written file is left. A crash (or a node
// losing power) leaves either the old file or the complete new one.
void create_atomically(const std::string& path, const std::function<void(hid_t file)>& fill, const AtomicOptions& opt);
// The same with keep_previous and no user block.
void create_atomically(const std::string& path, const std::function<void(hid_t file)>& fill,
                       bool keep_previous = false);

} // namespace ompml::h5

#define H5_CHECK(expr)                                                                                                 \
    do {                                                                                                               \
        if ((expr) < 0) ::ompml::h5::fail(__FILE__, __LINE__, #expr);                                                  \
    } while (0)
