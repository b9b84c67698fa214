// HDF5 wrappers: handles, typed I/O and attributes, with HDF5's own messages in the errors.
#include "io/h5.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace ompml::h5 {

std::recursive_mutex& lock()
{
    static std::recursive_mutex m;
    return m;
}

namespace {

// Silence HDF5's automatic stack dump once, before the first call.
struct QuietErrors {
    QuietErrors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
const QuietErrors quiet_errors;

// The innermost message on HDF5's error stack, e.g. "inflate() failed", and whether the
// failure came from the filter pipeline (compression): then the data itself is suspect.
struct StackText {
    std::string desc;
    bool pipeline = false;
};
herr_t innermost(unsigned, const H5E_error2_t* e, void* out)
{
    auto* t = static_cast<StackText*>(out);
    if (e->desc != nullptr && e->desc[0] != '\0') t->desc = e->desc;
    if (e->maj_num == H5E_PLINE) t->pipeline = true;
    return 0;
}

std::string name_of(hid_t obj)
{
    char buf[512] = {0};
    if (H5Iget_name(obj, buf, sizeof buf) <= 0) return "?";
    return buf;
}

// "HDF5 call" for messages: the function name of a checked expression ("H5Dread(...)" -> "H5Dread").
std::string call_name(const char* expr)
{
    const std::string e = expr;
    return e.substr(0, e.find('('));
}

} // namespace

std::string error_text()
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    StackText t;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, innermost, &t);
    H5Eclear2(H5E_DEFAULT);
    std::string s = t.desc.empty() ? std::string("unknown HDF5 error") : t.desc;
    if (t.pipeline) s += " (corrupt compressed data?)";
    return s;
}

void fail(const char* file, int line, const char* expr)
{
    const std::string text = error_text();
    throw Error("HDF5 call " + call_name(expr) + " failed: " + text + source_suffix(file, line));
}

void fail_on(hid_t obj, const std::string& what)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const std::string text = error_text(); // before the name queries, which could push errors
    throw Error(file_name(obj) + ": " + name_of(obj) + (what.empty() ? "" : " " + what) + ": " + text);
}

void Handle::reset()
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
    }
    id_ = H5I_INVALID_HID;
}

const char* dtype_name(Dtype t)
{
    switch (t) {
    case Dtype::u8: return "uint8";
    case Dtype::i32: return "int32";
    case Dtype::i64: return "int64";
    case Dtype::f32: return "float32";
    case Dtype::f64: return "float64";
    default: return "unsupported type";
    }
}

hid_t native_type(Dtype t)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    switch (t) {
    case Dtype::u8: return H5T_NATIVE_UINT8;
    case Dtype::i32: return H5T_NATIVE_INT32;
    case Dtype::i64: return H5T_NATIVE_INT64;
    case Dtype::f32: return H5T_NATIVE_FLOAT;
    case Dtype::f64: return H5T_NATIVE_DOUBLE;
    default: throw Error("h5: no native type for an unsupported dtype");
    }
}

Handle open_read(const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
    if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(path + ": not an HDF5 file");
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!f.valid()) throw Error(path + ": cannot open as HDF5: " + error_text());
    return f;
}

Handle open_rw(const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    if (!f.valid()) throw Error(path + ": cannot open for writing: " + error_text());
    return f;
}

Handle create(const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    if (!f.valid()) throw Error(path + ": cannot create HDF5 file: " + error_text());
    return f;
}

bool exists(hid_t loc, const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    // Check each prefix: H5Lexists fails (rather than returning 0) when a parent is missing.
    std::size_t pos = 0;
    while (true) {
        pos = path.find('/', pos + 1);
        const std::string prefix = path.substr(0, pos);
        if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
        if (pos == std::string::npos) return true;
    }
}

Handle open_group(hid_t loc, const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle g(H5Gopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!g.valid()) throw Error(file_name(loc) + ": cannot open group /" + path);
    return g;
}

Handle create_group(hid_t loc, const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle g(H5Gcreate2(loc, path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g.valid()) throw Error(file_name(loc) + ": cannot create group /" + path);
    return g;
}

Handle open_dataset(hid_t loc, const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (!exists(loc, path)) throw Error(file_name(loc) + ": missing dataset " + name_of(loc) + "/" + path);
    Handle d(H5Dopen2(loc, path.c_str(), H5P_DEFAULT));
    if (!d.valid()) fail_on(loc, "cannot open dataset " + path);
    return d;
}

std::uint64_t DatasetInfo::row_elems() const
{
    std::uint64_t n = 1;
    for (std::size_t i = 1; i < dims.size(); ++i) n *= dims[i];
    return n;
}

DatasetInfo info(hid_t dataset)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    DatasetInfo di;
    Handle space(H5Dget_space(dataset));
    H5_CHECK(space.id());
    const int rank = H5Sget_simple_extent_ndims(space);
    H5_CHECK(rank);
    std::vector<hsize_t> d(static_cast<std::size_t>(rank));
    H5_CHECK(H5Sget_simple_extent_dims(space, d.data(), nullptr));
    di.dims.assign(d.begin(), d.end());

    Handle type(H5Dget_type(dataset));
    H5_CHECK(type.id());
    const H5T_class_t cls = H5Tget_class(type);
    const std::size_t size = H5Tget_size(type);
    if (cls == H5T_INTEGER) {
        const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
        if (size == 1 && !is_signed)
            di.dtype = Dtype::u8;
        else if (size == 4 && is_signed)
            di.dtype = Dtype::i32;
        else if (size == 8 && is_signed)
            di.dtype = Dtype::i64;
        else if (size <= 8)
            di.dtype = Dtype::i64; // other integers are read converted to int64
    } else if (cls == H5T_FLOAT) {
        di.dtype = size == 4 ? Dtype::f32 : size == 8 ? Dtype::f64 : Dtype::other;
    }
    return di;
}

void write(hid_t loc, const std::string& name, Dtype t, const void* data, const std::vector<std::uint64_t>& dims,
           int compress_level)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const Handle ds =
        create_dataset(loc, name, t, dims, compress_level > 0 ? chunk_rows_for(t, dims) : 0, compress_level);
    std::uint64_t total = 1;
    for (auto x : dims) total *= x;
    if (total > 0) write_rows(ds, t, 0, dims[0], data);
}

std::uint64_t chunk_rows_for(Dtype t, const std::vector<std::uint64_t>& dims)
{
    std::uint64_t row_bytes = H5Tget_size(native_type(t));
    for (std::size_t i = 1; i < dims.size(); ++i) row_bytes *= std::max<std::uint64_t>(1, dims[i]);
    return std::max<std::uint64_t>(1, (256u << 10) / row_bytes);
}

namespace {
// "rows 128-255" (inclusive, as a person counts them) or "row 7".
std::string rows_text(std::uint64_t first, std::uint64_t count)
{
    if (count == 1) return "row " + std::to_string(first);
    return "rows " + std::to_string(first) + "-" + std::to_string(first + count - 1);
}

// Selects whole rows [first, first + count) in a dataspace of the dataset's shape: op
// H5S_SELECT_SET starts a selection, H5S_SELECT_OR adds a run to it.
void select_row_run(hid_t space, const DatasetInfo& di, std::uint64_t first, std::uint64_t count, H5S_seloper_t op)
{
    std::vector<hsize_t> start(di.dims.size(), 0), block(di.dims.begin(), di.dims.end());
    start[0] = first;
    block[0] = count;
    H5_CHECK(H5Sselect_hyperslab(space, op, start.data(), nullptr, block.data(), nullptr));
}

// A memory dataspace of `rows` whole rows of the dataset, contiguous.
Handle rows_space(const DatasetInfo& di, std::uint64_t rows)
{
    std::vector<hsize_t> dims(di.dims.begin(), di.dims.end());
    dims[0] = rows;
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    H5_CHECK(space.id());
    return space;
}

// Rows [row0, row0 + nrows) of a dataset: the file selection and a matching memory space.
struct RowSelection {
    Handle file, mem;
};
RowSelection select_rows(hid_t dataset, std::uint64_t row0, std::uint64_t nrows, const char* what)
{
    const DatasetInfo di = info(dataset);
    require(row0 + nrows <= di.rows(),
            file_name(dataset) + ": " + name_of(dataset) + ": " + what + " [" + std::to_string(row0) + ", " +
                std::to_string(row0 + nrows) + ") out of range (" + std::to_string(di.rows()) + " rows)");
    RowSelection sel{Handle(H5Dget_space(dataset)), Handle()};
    H5_CHECK(sel.file.id());
    select_row_run(sel.file, di, row0, nrows, H5S_SELECT_SET);
    sel.mem = rows_space(di, nrows);
    return sel;
}

// A run of consecutive rows [first, first + count) of a row set; `at` is the index of its first
// row in the set (where its data goes in the output).
struct RowRun {
    std::uint64_t first = 0, count = 0, at = 0;
};
// Checks a row set (in range, strictly increasing) and splits it into runs of consecutive rows.
std::vector<RowRun> row_runs(hid_t dataset, const DatasetInfo& di, const std::vector<std::uint64_t>& rows)
{
    std::vector<RowRun> runs;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        require(rows[i] < di.rows(),
                file_name(dataset) + ": " + name_of(dataset) + ": row " + std::to_string(rows[i]) + " out of range (" +
                    std::to_string(di.rows()) + " rows)");
        require(i == 0 || rows[i] > rows[i - 1], "h5: a row set must be strictly increasing");
        if (i > 0 && rows[i] == rows[i - 1] + 1)
            ++runs.back().count;
        else
            runs.push_back(RowRun{rows[i], 1, i});
    }
    return runs;
}
} // namespace

void read_rows(hid_t dataset, Dtype t, std::uint64_t row0, std::uint64_t nrows, void* out)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const RowSelection sel = select_rows(dataset, row0, nrows, "rows");
    if (H5Dread(dataset, native_type(t), sel.mem, sel.file, H5P_DEFAULT, out) < 0)
        fail_on(dataset, rows_text(row0, nrows) + ": cannot read");
}

namespace {
void write_attr(hid_t obj, const std::string& name, hid_t type, const void* v)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (H5Aexists(obj, name.c_str()) > 0) H5_CHECK(H5Adelete(obj, name.c_str()));
    Handle space(H5Screate(H5S_SCALAR));
    Handle a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid() || H5Awrite(a, type, v) < 0) fail_on(obj, "cannot write attribute '" + name + "'");
}
Handle open_attr(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (H5Aexists(obj, name.c_str()) <= 0)
        throw Error(file_name(obj) + ": " + name_of(obj) + ": missing attribute '" + name + "'");
    Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT));
    if (!a.valid()) fail_on(obj, "cannot open attribute '" + name + "'");
    return a;
}

// Number of values an attribute holds: 1 for a scalar, the product of the dims of an array.
std::int64_t attr_points(hid_t a)
{
    Handle space(H5Aget_space(a));
    H5_CHECK(space.id());
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    H5_CHECK(n);
    return n;
}

// Opens an attribute that must hold exactly one value (a scalar, or an array of one element as
// MATLAB and R write them): reading more into one variable would overrun it.
Handle open_single_attr(hid_t obj, const std::string& name)
{
    Handle a = open_attr(obj, name);
    const std::int64_t n = attr_points(a);
    if (n != 1)
        throw Error(file_name(obj) + ": " + name_of(obj) + ": attribute '" + name + "' holds " + std::to_string(n) +
                    " values, expected one");
    return a;
}
} // namespace

void set_attr(hid_t obj, const std::string& name, std::int64_t v) { write_attr(obj, name, H5T_NATIVE_INT64, &v); }
void set_attr(hid_t obj, const std::string& name, double v) { write_attr(obj, name, H5T_NATIVE_DOUBLE, &v); }
void set_attr(hid_t obj, const std::string& name, const std::string& v)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    // Variable-length UTF-8 string: what h5py reads back as str.
    Handle type(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(type, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(type, H5T_CSET_UTF8));
    const char* p = v.c_str();
    write_attr(obj, name, type, &p);
}

bool has_attr(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    return H5Aexists(obj, name.c_str()) > 0;
}

std::int64_t get_attr_int(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle a = open_single_attr(obj, name);
    std::int64_t v = 0;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
        throw Error(file_name(obj) + ": attribute '" + name + "' is not an integer");
    return v;
}

double get_attr_double(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle a = open_single_attr(obj, name);
    double v = 0;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
        throw Error(file_name(obj) + ": attribute '" + name + "' is not a number");
    return v;
}

std::string get_attr_string(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle a = open_single_attr(obj, name);
    Handle type(H5Aget_type(a));
    H5_CHECK(type.id());
    if (H5Tget_class(type) != H5T_STRING) throw Error(file_name(obj) + ": attribute '" + name + "' is not a string");
    if (H5Tis_variable_str(type) > 0) {
        Handle mem(H5Tcopy(H5T_C_S1));
        H5_CHECK(H5Tset_size(mem, H5T_VARIABLE));
        H5_CHECK(H5Tset_cset(mem, H5Tget_cset(type)));
        char* p = nullptr;
        H5_CHECK(H5Aread(a, mem, &p));
        std::string s = p != nullptr ? p : "";
        Handle space(H5Aget_space(a));
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, &p);
        return s;
    }
    std::string s(H5Tget_size(type), '\0');
    H5_CHECK(H5Aread(a, type, s.data()));
    return s.substr(0, s.find('\0'));
}

std::string file_name(hid_t obj)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    char buf[4096] = {0};
    if (H5Fget_name(obj, buf, sizeof buf) <= 0) return "?";
    return buf;
}

// ---- Additions for dataset files ------------------------------------------------------------

std::string type_name(hid_t dataset)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle type(H5Dget_type(dataset));
    H5_CHECK(type.id());
    const std::size_t bits = 8 * H5Tget_size(type);
    switch (H5Tget_class(type)) {
    case H5T_INTEGER: return std::string(H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint") + std::to_string(bits);
    case H5T_FLOAT: return "float" + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    default: return "unknown type";
    }
}

Handle create_dataset(hid_t loc, const std::string& name, Dtype t, const std::vector<std::uint64_t>& dims,
                      std::uint64_t chunk_rows, int compress_level)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const std::vector<hsize_t> d(dims.begin(), dims.end());
    Handle space(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr));
    H5_CHECK(space.id());
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5_CHECK(dcpl.id());
    H5_CHECK(H5Pset_obj_track_times(dcpl, 0)); // reproducible bytes: no timestamps
    if (chunk_rows > 0 && !d.empty() && d[0] > 0) {
        std::vector<hsize_t> chunk = d;
        chunk[0] = std::min<hsize_t>(d[0], chunk_rows);
        for (std::size_t i = 1; i < chunk.size(); ++i) chunk[i] = std::max<hsize_t>(1, chunk[i]);
        H5_CHECK(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()));
        if (compress_level > 0) {
            H5_CHECK(H5Pset_shuffle(dcpl));
            H5_CHECK(H5Pset_deflate(dcpl, static_cast<unsigned>(compress_level)));
        }
    }
    Handle ds(H5Dcreate2(loc, name.c_str(), native_type(t), space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    if (!ds.valid()) fail_on(loc, "cannot create dataset " + name);
    return ds;
}

void write_rows(hid_t dataset, Dtype t, std::uint64_t row0, std::uint64_t nrows, const void* data)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (nrows == 0) return;
    const RowSelection sel = select_rows(dataset, row0, nrows, "write of rows");
    if (H5Dwrite(dataset, native_type(t), sel.mem, sel.file, H5P_DEFAULT, data) < 0)
        fail_on(dataset, rows_text(row0, nrows) + ": cannot write");
}

Handle create_group_untimed(hid_t loc, const std::string& path)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle gcpl(H5Pcreate(H5P_GROUP_CREATE));
    H5_CHECK(gcpl.id());
    H5_CHECK(H5Pset_obj_track_times(gcpl, 0));
    Handle g(H5Gcreate2(loc, path.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT));
    if (!g.valid()) throw Error(file_name(loc) + ": cannot create group /" + path);
    return g;
}

void read_row_set(hid_t dataset, Dtype t, const std::vector<std::uint64_t>& rows, void* out)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (rows.empty()) return;
    const DatasetInfo di = info(dataset);
    const std::vector<RowRun> runs = row_runs(dataset, di, rows);
    Handle file_space(H5Dget_space(dataset));
    H5_CHECK(file_space.id());
    // One H5Dread per run. (One read over an OR-ed union of hyperslabs was measured 10x slower
    // on HDF5 1.10 for 128 scattered rows of a chunked dataset.)
    const std::uint64_t row_bytes = di.row_elems() * H5Tget_size(native_type(t));
    for (const RowRun& run : runs) {
        select_row_run(file_space, di, run.first, run.count, H5S_SELECT_SET);
        const Handle mem = rows_space(di, run.count);
        if (H5Dread(dataset, native_type(t), mem, file_space, H5P_DEFAULT,
                    static_cast<unsigned char*>(out) + run.at * row_bytes) < 0)
            fail_on(dataset, rows_text(run.first, run.count) + ": cannot read");
    }
}

bool is_filtered(hid_t dataset)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle dcpl(H5Dget_create_plist(dataset));
    H5_CHECK(dcpl.id());
    const int n = H5Pget_nfilters(dcpl);
    H5_CHECK(n);
    return n > 0;
}

std::uint64_t chunk_rows(hid_t dataset)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle dcpl(H5Dget_create_plist(dataset));
    H5_CHECK(dcpl.id());
    if (H5Pget_layout(dcpl) != H5D_CHUNKED) return 0;
    const int rank = H5Pget_chunk(dcpl, 0, nullptr);
    H5_CHECK(rank);
    std::vector<hsize_t> chunk(static_cast<std::size_t>(std::max(rank, 1)), 0);
    H5_CHECK(H5Pget_chunk(dcpl, rank, chunk.data()));
    return chunk[0];
}

Handle open_dataset_cached(hid_t loc, const std::string& path, std::size_t cache_bytes)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (!exists(loc, path)) throw Error(file_name(loc) + ": missing dataset " + name_of(loc) + "/" + path);
    Handle dapl(H5Pcreate(H5P_DATASET_ACCESS));
    H5_CHECK(dapl.id());
    // Slots: a prime well above the number of chunks that fit, as the HDF5 guide suggests.
    H5_CHECK(H5Pset_chunk_cache(dapl, 100003, cache_bytes, 1.0));
    Handle d(H5Dopen2(loc, path.c_str(), dapl));
    if (!d.valid()) fail_on(loc, "cannot open dataset " + path);
    return d;
}

// ---- Parallel HDF5 -------------------------------------------------------------------------------

#ifdef H5_HAVE_PARALLEL
const bool kHaveParallel = true;

Handle open_read_mpio(const std::string& path, MPI_Comm comm)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5_CHECK(fapl.id());
    H5_CHECK(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl));
    if (!f.valid()) throw Error(path + ": cannot open as HDF5 with the MPI-IO driver: " + error_text());
    return f;
}

void read_row_set_collective(hid_t dataset, Dtype t, const std::vector<std::uint64_t>& rows, void* out)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const DatasetInfo di = info(dataset);
    const std::vector<RowRun> runs = row_runs(dataset, di, rows);
    // One read of the union of the runs: a collective read must be one call on every rank,
    // whatever its number of runs. The runs are increasing, so the union's order (HDF5 maps
    // file to memory in row-major order) is the order of `rows`.
    Handle file_space(H5Dget_space(dataset));
    H5_CHECK(file_space.id());
    const Handle mem = rows_space(di, std::max<std::uint64_t>(rows.size(), 1));
    if (runs.empty()) {
        H5_CHECK(H5Sselect_none(file_space));
        H5_CHECK(H5Sselect_none(mem));
    }
    for (std::size_t i = 0; i < runs.size(); ++i)
        select_row_run(file_space, di, runs[i].first, runs[i].count, i == 0 ? H5S_SELECT_SET : H5S_SELECT_OR);
    Handle dxpl(H5Pcreate(H5P_DATASET_XFER));
    H5_CHECK(dxpl.id());
    H5_CHECK(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
    if (H5Dread(dataset, native_type(t), mem, file_space, dxpl, out) < 0)
        fail_on(dataset,
                (runs.empty()
                     ? std::string("(no rows)")
                     : rows_text(runs.front().first, runs.back().first + runs.back().count - runs.front().first)) +
                    ": cannot read (collective read of " + std::to_string(rows.size()) + " rows)");
}

namespace {
std::vector<hid_t>& closed_at_finalize()
{
    static std::vector<hid_t> ids;
    return ids;
}
// MPI_Finalize deletes MPI_COMM_SELF's attributes first, while MPI still works (MPI 3.1,
// 8.7.1), in the reverse order of setting: so this runs before HDF5's own hook, if it set one.
int close_objects_at_finalize(MPI_Comm, int, void*, void*)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    for (const hid_t id : closed_at_finalize()) Handle(id).reset();
    closed_at_finalize().clear();
    return MPI_SUCCESS;
}
} // namespace

void close_at_mpi_finalize(Handle& object)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    if (!object.valid()) return;
    static const bool hooked = [] {
        int key = MPI_KEYVAL_INVALID;
        return MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, close_objects_at_finalize, &key, nullptr) == MPI_SUCCESS &&
            MPI_Comm_set_attr(MPI_COMM_SELF, key, nullptr) == MPI_SUCCESS;
    }();
    if (hooked)
        closed_at_finalize().push_back(object.release());
    else
        object.release(); // no hook: leave it open rather than risk a hang
}
#else
const bool kHaveParallel = false;

namespace {
[[noreturn]] void no_parallel(const char* what)
{
    throw Error(std::string("h5::") + what + ": this HDF5 is built without parallel support (MPI-IO)");
}
} // namespace

Handle open_read_mpio(const std::string&, MPI_Comm) { no_parallel("open_read_mpio"); }
void read_row_set_collective(hid_t, Dtype, const std::vector<std::uint64_t>&, void*)
{
    no_parallel("read_row_set_collective");
}
void close_at_mpi_finalize(Handle& object) { object.reset(); } // a serial file: closing never waits
#endif

namespace {
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out)
{
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
}
} // namespace

std::vector<std::string> attr_names(hid_t obj)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    std::vector<std::string> names;
    hsize_t idx = 0;
    H5_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &names));
    return names;
}

H5T_class_t attr_class(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    Handle a = open_attr(obj, name);
    Handle type(H5Aget_type(a));
    H5_CHECK(type.id());
    return H5Tget_class(type);
}

std::int64_t attr_size(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const Handle a = open_attr(obj, name);
    return attr_points(a);
}

std::string attr_text(hid_t obj, const std::string& name)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const std::int64_t n = attr_size(obj, name);
    const H5T_class_t cls = attr_class(obj, name);
    if (n != 1) {
        // A few numbers are shown ("[3, 5]"), longer or other arrays by their length.
        if (n < 1 || n > 8 || (cls != H5T_INTEGER && cls != H5T_FLOAT)) return "[" + std::to_string(n) + " values]";
        const Handle a = open_attr(obj, name);
        std::vector<double> v(static_cast<std::size_t>(n));
        H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, v.data()));
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%s%g", i ? ", " : "", v[i]);
            s += buf;
        }
        return s + "]";
    }
    switch (cls) {
    case H5T_STRING: return get_attr_string(obj, name);
    case H5T_INTEGER: return std::to_string(get_attr_int(obj, name));
    case H5T_FLOAT: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", get_attr_double(obj, name));
        return buf;
    }
    default: return "(unprintable)";
    }
}

// ---- Storage checks ----------------------------------------------------------------------------

namespace {
// a * b, saturating at 2^64 - 1 (a file that claims more is refused anyway).
std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b)
{
    const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    return p > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(p);
}
} // namespace

void require_stored(hid_t dataset)
{
    std::lock_guard<std::recursive_mutex> guard(lock());
    const DatasetInfo di = info(dataset);
    Handle type(H5Dget_type(dataset));
    H5_CHECK(type.id());
    std::uint64_t claimed = H5Tget_size(type); // bytes the shape claims
    for (const std::uint64_t d : di.dims) claimed = mul_sat(claimed, d);
    if (claimed == 0) return;
    Handle dcpl(H5Dget_create_plist(dataset));
    H5_CHECK(dcpl.id());
    const std::string head = file_name(dataset) + ": " + name_of(dataset) + ": claims " + std::to_string(di.rows()) +
        " rows (" + std::to_string(claimed) + " bytes) but stores only ";
    const std::string tail = ": truncated or damaged?";
    switch (H5Pget_layout(dcpl)) {
    case H5D_CHUNKED: {
        // Count chunks, not bytes: gzip shrinks a chunk of zeros about 1000x, so a complete
        // compressed dataset may be far smaller than it claims; a missing chunk is never
        // legitimate in a file written through (HDF5 would read it as the fill value).
#if H5_VERSION_GE(1, 10, 5)
        const int rank = static_cast<int>(di.dims.size());
        std::vector<hsize_t> chunk(static_cast<std::size_t>(rank));
        H5_CHECK(H5Pget_chunk(dcpl, rank, chunk.data()));
        std::uint64_t expected = 1;
        for (int k = 0; k < rank; ++k) expected = mul_sat(expected, (di.dims[k] + chunk[k] - 1) / chunk[k]);
        Handle space(H5Dget_space(dataset));
        H5_CHECK(space.id());
        hsize_t allocated = 0;
        if (H5Dget_num_chunks(dataset, space, &allocated) < 0) fail_on(dataset, "cannot count its chunks");
        if (allocated < expected)
            throw Error(head + std::to_string(allocated) + " of its " + std::to_string(expected) + " chunks" + tail);
#endif
        return;
    }
    case H5D_CONTIGUOUS: {
        if (H5Pget_external_count(dcpl) > 0) return; // raw data in external files: not checked
        const hsize_t stored = H5Dget_storage_size(dataset);
        if (stored < claimed) throw Error(head + std::to_string(stored) + " bytes" + tail);
        // Its extent must lie inside the file (HDF5 refuses most truncated files on open, but
        // not one whose end-of-file record was cut with it).
        const haddr_t offset = H5Dget_offset(dataset);
        hsize_t file_size = 0;
        if (offset != HADDR_UNDEF && H5Fget_filesize(dataset, &file_size) >= 0 &&
            (offset > file_size || file_size - offset < claimed))
            throw Error(head + std::to_string(offset > file_size ? 0 : file_size - offset) +
                        " bytes before the end of the file" + tail);
        return;
    }
    default: return; // compact: inside the object header, complete whenever the file opens; virtual: not ours to check
    }
}

// ---- Atomic creation ------------------------------------------------------------------------------

namespace {

// Writes `text` at the start of the file (its user block, which HDF5 left for it), through the
// temporary's own descriptor: never through whatever its name may hold by now.
void write_user_block(int fd, const std::string& name, const std::string& text)
{
    const ssize_t n = ::pwrite(fd, text.data(), text.size(), 0);
    if (n != static_cast<ssize_t>(text.size()))
        throw Error(name + ": cannot write its user block: " + (n < 0 ? std::strerror(errno) : "short write"));
}

// Smallest user block HDF5 accepts that holds n bytes: a power of two, at least 512.
hsize_t user_block_size(std::size_t n)
{
    hsize_t size = 512;
    while (size < n) size *= 2;
    return size;
}

// atomic_file::Create for HDF5: H5Fcreate with H5F_ACC_EXCL, which HDF5's default (sec2) driver
// opens with O_CREAT | O_EXCL, so a name already taken (a link included) fails and nothing is
// written through it. Returns a duplicate of HDF5's descriptor, which outlives H5Fclose, so the
// user block, the fsync and the checks before the rename reach this file and no other.
int create_exclusive(const std::string& path, const std::string& name, hid_t fcpl, Handle& file)
{
    Handle f(H5Fcreate(name.c_str(), H5F_ACC_EXCL, fcpl, H5P_DEFAULT));
    if (!f.valid()) {
        const std::string why = error_text();
        struct stat st{};
        if (::lstat(name.c_str(), &st) == 0) { // taken: the caller draws another name
            errno = EEXIST;
            return -1;
        }
        throw Error(path + ": cannot create HDF5 file " + name + ": " + why);
    }
    Handle fapl(H5Fget_access_plist(f));
    void* handle = nullptr;
    int fd = -1;
    if (fapl.valid() && H5Pget_driver(fapl) == H5FD_SEC2 && H5Fget_vfd_handle(f, fapl, &handle) >= 0 &&
        handle != nullptr)
        fd = ::fcntl(*static_cast<int*>(handle), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        const int err = errno;
        f.reset();
        ::unlink(name.c_str()); // created just now, by us
        throw Error(path + ": cannot get the descriptor of HDF5 file " + name + ": " + std::strerror(err));
    }
    file = std::move(f);
    return fd;
}

} // namespace

void create_atomically(const std::string& path, const std::function<void(hid_t file)>& fill, bool keep_previous)
{
    AtomicOptions opt;
    opt.keep_previous = keep_previous;
    create_atomically(path, fill, opt);
}

void create_atomically(const std::string& path, const std::function<void(hid_t file)>& fill, const AtomicOptions& opt)
{
    Handle f; // declared first: on an error the temporary is removed, then the file closed
    Handle fcpl;
    {
        std::lock_guard<std::recursive_mutex> guard(lock()); // a loader thread may be reading
        fcpl = Handle(H5Pcreate(H5P_FILE_CREATE));
        H5_CHECK(fcpl.id());
        if (!opt.user_block.empty()) H5_CHECK(H5Pset_userblock(fcpl, user_block_size(opt.user_block.size())));
    }
    atomic_file::TempFile tmp(path, [&](const std::string& name) {
        std::lock_guard<std::recursive_mutex> guard(lock());
        return create_exclusive(path, name, fcpl, f);
    });
    {
        std::lock_guard<std::recursive_mutex> guard(lock());
        fill(f);
        if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) throw Error(tmp.name() + ": cannot flush: " + error_text());
        if (H5Fclose(f.release()) < 0) throw Error(tmp.name() + ": cannot close: " + error_text());
    }
    if (!opt.user_block.empty()) write_user_block(tmp.fd(), tmp.name(), opt.user_block);
    tmp.commit(opt);
}

} // namespace ompml::h5
