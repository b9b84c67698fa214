// Unlabelled images from HDF5 or IDX files (images.hpp).
#include "io/images.hpp"

#include "core/check.hpp"
#include "io/idx.hpp"

#include <filesystem>

namespace ompml {
namespace {

Images read_hdf5(const std::string& path, Split split)
{
    std::lock_guard<std::recursive_mutex> guard(h5::lock());
    const h5::Handle f = h5::open_read(path);
    const std::string g = enum_name(split);
    Images im;
    im.source = h5::exists(f, g + "/images") ? "/" + g + "/images" : "/images";
    if (!h5::exists(f, im.source.substr(1)))
        throw Error(path + ": no /" + g + "/images and no /images (an image file holds /images (N, F) or (N, H, W))");
    const h5::Handle ds = h5::open_dataset(f, im.source.substr(1));
    const h5::DatasetInfo di = h5::info(ds);
    if (di.dims.size() < 2)
        throw Error(path + ": " + im.source + ": rank " + std::to_string(di.dims.size()) +
                    ", expected (N, F) or (N, H, W)");
    if (di.dtype != h5::Dtype::u8 && di.dtype != h5::Dtype::f32)
        throw Error(path + ": " + im.source + ": dtype " + h5::type_name(ds) + ", expected uint8 or float32");
    h5::require_stored(ds);
    im.dtype = di.dtype;
    im.rows = di.rows();
    im.features = di.row_elems();
    im.bytes.resize(im.rows * im.features * (im.dtype == h5::Dtype::u8 ? 1 : 4));
    if (im.rows > 0) h5::read_rows(ds, im.dtype, 0, im.rows, im.bytes.data());
    if (im.source == "/" + g + "/images" && h5::exists(f, g + "/labels")) {
        im.labels = h5::read_all<std::int32_t>(f, g + "/labels");
        if (im.labels.size() != im.rows) im.labels.clear(); // not this split's labels: none
    }
    return im;
}

Images read_idx_images(const std::string& path)
{
    IdxArray a = read_idx(path, 0);
    if (a.dims.size() < 2)
        throw Error(path + ": IDX rank " + std::to_string(a.dims.size()) + ": images are (N, F) or (N, H, W)");
    Images im;
    im.source = "IDX file";
    im.rows = a.dims[0];
    im.features = im.rows > 0 ? a.data.size() / im.rows : 0;
    im.bytes = std::move(a.data);
    return im;
}

} // namespace

Images read_images(const std::string& path, Split split)
{
    if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
    bool hdf5 = false;
    {
        std::lock_guard<std::recursive_mutex> guard(h5::lock());
        hdf5 = H5Fis_hdf5(path.c_str()) > 0;
        if (!hdf5) h5::error_text(); // clears HDF5's error stack
    }
    Images im = hdf5 ? read_hdf5(path, split) : read_idx_images(path);
    if (im.rows == 0 || im.features == 0) throw Error(path + ": " + im.source + ": no images");
    if (im.dtype == h5::Dtype::f32) {
        const auto* x = reinterpret_cast<const float*>(im.bytes.data());
        const std::size_t n = im.rows * im.features, i = first_non_finite(x, n);
        if (i < n)
            throw Error(path + ": " + im.source + ": row " + std::to_string(i / im.features) + ", column " +
                        std::to_string(i % im.features) + " is " + non_finite_name(x[i]));
    }
    return im;
}

} // namespace ompml
