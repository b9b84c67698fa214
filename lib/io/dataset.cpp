// Dataset schema checker and writer (schema in data/README.md). The checker reports the first
// mismatch as one line that names the file and the object; the writer produces files that
// pass it, and that h5py reads as plain numpy arrays and str attributes.
#include "io/dataset.hpp"

#include <algorithm>

namespace ompml {
namespace {

std::string dims_text(const std::vector<std::uint64_t>& dims)
{
    std::string s;
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
    return s.empty() ? "scalar" : s;
}

// Checks one split's structure (not its label values); the label type is left in `labels`.
SplitInfo check_split(hid_t file, const std::string& path, Split s)
{
    const std::string g = enum_name(s);
    if (!h5::exists(file, g)) throw Error(path + ": missing group /" + g);
    const h5::Handle group = h5::open_group(file, g);
    for (const char* name : {"images", "labels"})
        if (!h5::exists(group, name)) throw Error(path + ": missing dataset /" + g + "/" + name);

    const h5::Handle images = h5::open_dataset(group, "images");
    const h5::Handle labels = h5::open_dataset(group, "labels");
    const h5::DatasetInfo im = h5::info(images), lb = h5::info(labels);
    const std::string im_name = path + ": /" + g + "/images: ", lb_name = path + ": /" + g + "/labels: ";

    if (im.dims.size() != 2 && im.dims.size() != 3)
        throw Error(im_name + "rank " + std::to_string(im.dims.size()) + " (" + dims_text(im.dims) +
                    "), expected 2 (N, F) or 3 (N, H, W)");
    if (lb.dims.size() != 1)
        throw Error(lb_name + "rank " + std::to_string(lb.dims.size()) + " (" + dims_text(lb.dims) +
                    "), expected 1 (N)");
    if (im.dtype != h5::Dtype::u8 && im.dtype != h5::Dtype::f32)
        throw Error(im_name + "dtype " + h5::type_name(images) + ", expected uint8 or float32");
    {
        std::lock_guard<std::recursive_mutex> guard(h5::lock());
        h5::Handle type(H5Dget_type(labels));
        H5_CHECK(type.id());
        if (H5Tget_class(type) != H5T_INTEGER || H5Tget_size(type) > 8)
            throw Error(lb_name + "dtype " + h5::type_name(labels) + ", expected an integer type");
    }
    if (im.rows() != lb.rows())
        throw Error(path + ": /" + g + ": " + std::to_string(im.rows()) + " images but " + std::to_string(lb.rows()) +
                    " labels");
    if (im.rows() == 0) throw Error(path + ": /" + g + ": empty split (0 samples)");
    if (im.row_elems() == 0) throw Error(im_name + "0 features per sample (" + dims_text(im.dims) + ")");
    // Before anything reads them: a damaged file that claims billions of rows must fail now,
    // not after minutes of reading fill values.
    h5::require_stored(labels);
    h5::require_stored(images);

    SplitInfo si;
    si.samples = im.rows();
    si.image_dims.assign(im.dims.begin() + 1, im.dims.end());
    si.image_dtype = im.dtype;
    si.label_type = h5::type_name(labels);
    return si;
}

// Reads every label (in blocks, converted to int64 so no stored value is clipped), checks the
// range and counts the histogram.
void check_labels(hid_t file, const std::string& path, Split s, int classes, SplitInfo& si)
{
    const std::string g = enum_name(s);
    const h5::Handle labels = h5::open_dataset(file, g + "/labels");
    si.label_counts.assign(static_cast<std::size_t>(classes), 0);
    constexpr std::uint64_t kBlock = 1 << 20;
    std::vector<std::int64_t> buf;
    for (std::uint64_t row0 = 0; row0 < si.samples; row0 += kBlock) {
        const std::uint64_t n = std::min(kBlock, si.samples - row0);
        buf.resize(n);
        h5::read_rows(labels, h5::Dtype::i64, row0, n, buf.data());
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::int64_t y = buf[i];
            const std::string at =
                path + ": /" + g + "/labels: label " + std::to_string(y) + " at row " + std::to_string(row0 + i);
            if (y < 0) throw Error(at + " < 0");
            if (y >= classes) throw Error(at + " >= classes (" + std::to_string(classes) + ")");
            ++si.label_counts[static_cast<std::size_t>(y)];
        }
    }
}

} // namespace

DatasetInfo inspect_dataset(const std::string& path)
{
    DatasetInfo d;
    d.path = path;
    const h5::Handle file = h5::open_read(path); // "no such file" / "not an HDF5 file"
    d.train = check_split(file, path, Split::train);
    d.test = check_split(file, path, Split::test);
    if (d.test.image_dims != d.train.image_dims)
        throw Error(path + ": /test/images: per-sample dims " + dims_text(d.test.image_dims) +
                    " differ from /train/images " + dims_text(d.train.image_dims));
    d.features = 1;
    for (auto x : d.train.image_dims) d.features *= x;

    if (!h5::has_attr(file, "classes"))
        throw Error(path + ": missing root attribute 'classes' (the number of classes)");
    // One integer: a scalar, or an array of exactly one element (MATLAB and R write scalars
    // that way); [3, 5] is ambiguous and refused rather than read as 3.
    if (h5::attr_class(file, "classes") != H5T_INTEGER || h5::attr_size(file, "classes") != 1)
        throw Error(path + ": root attribute 'classes' must be one integer, got " + h5::attr_text(file, "classes"));
    const std::int64_t classes = h5::get_attr_int(file, "classes");
    if (classes <= 0 || classes > (1 << 24))
        throw Error(path + ": root attribute 'classes' must be in [1, 2^24], got " + std::to_string(classes));
    d.classes = static_cast<int>(classes);
    if (h5::has_attr(file, "source")) d.source = h5::attr_text(file, "source");
    if (h5::has_attr(file, "created_by")) d.created_by = h5::attr_text(file, "created_by");

    check_labels(file, path, Split::train, d.classes, d.train);
    check_labels(file, path, Split::test, d.classes, d.test);
    d.has_val = h5::exists(file, "val");
    if (d.has_val) {
        d.val = check_split(file, path, Split::val);
        if (d.val.image_dims != d.train.image_dims)
            throw Error(path + ": /val/images: per-sample dims " + dims_text(d.val.image_dims) +
                        " differ from /train/images " + dims_text(d.train.image_dims));
        check_labels(file, path, Split::val, d.classes, d.val);
    }
    return d;
}

const SplitInfo& DatasetInfo::split(Split s) const
{
    if (s == Split::train) return train;
    if (s == Split::test) return test;
    if (!has_val) throw Error(path + ": has no /val split");
    return val;
}

void require_features(const DatasetInfo& d, std::uint64_t input_width)
{
    if (d.features != input_width)
        throw Error(d.path + ": " + std::to_string(d.features) + " features per sample but --layers starts with " +
                    std::to_string(input_width));
}

SplitWriter::SplitWriter(hid_t file, Split s, std::uint64_t samples, const std::vector<std::uint64_t>& image_dims,
                         h5::Dtype image_dtype, int compress_level)
    : dtype_(image_dtype)
{
    require(image_dtype == h5::Dtype::u8 || image_dtype == h5::Dtype::f32,
            "SplitWriter: images must be uint8 or float32");
    std::vector<std::uint64_t> dims{samples};
    dims.insert(dims.end(), image_dims.begin(), image_dims.end());
    group_ = h5::create_group_untimed(file, enum_name(s));
    images_ =
        h5::create_dataset(group_, "images", image_dtype, dims, h5::chunk_rows_for(image_dtype, dims), compress_level);
    labels_ = h5::create_dataset(group_, "labels", h5::Dtype::i32, {samples},
                                 h5::chunk_rows_for(h5::Dtype::i32, {samples}), compress_level);
}

void SplitWriter::write(std::uint64_t row0, std::uint64_t rows, const void* images, const std::int32_t* labels)
{
    h5::write_rows(images_, dtype_, row0, rows, images);
    h5::write_rows(labels_, h5::Dtype::i32, row0, rows, labels);
}

void set_dataset_attributes(hid_t file, int classes, const std::string& source, const std::string& created_by)
{
    h5::set_attr(file, "classes", static_cast<std::int64_t>(classes));
    h5::set_attr(file, "source", source);
    h5::set_attr(file, "created_by", created_by);
}

} // namespace ompml
