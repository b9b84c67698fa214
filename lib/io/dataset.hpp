// Dataset files: the HDF5 schema of data/README.md, checked on open.
//   /train/images  (N, F) or (N, H, W), uint8 or float32
//   /train/labels  (N), integer, each in [0, classes)
//   /test/images, /test/labels   likewise (same per-sample dims as train)
//   /val/images, /val/labels     optional: a validation split, likewise (ompml-train evaluates it
//                                each epoch instead of the test split)
//   root attributes: classes (integer > 0, required), source, created_by (strings)
// Writers (importers, synth) use SplitWriter and set_dataset_attributes inside
// h5::create_atomically, so a failed write leaves no file behind.
#pragma once

#include "core/enum_names.hpp"
#include "io/h5.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

enum class Split { train, test, val };
template <>
struct EnumNames<Split> {
    static constexpr const char* what = "split";
    static constexpr std::pair<Split, const char*> names[] = {
        {Split::train, "train"}, {Split::test, "test"}, {Split::val, "val"}};
};

struct SplitInfo {
    std::uint64_t samples = 0;
    std::vector<std::uint64_t> image_dims; // per-sample dims, e.g. {28, 28} or {784}
    h5::Dtype image_dtype = h5::Dtype::u8;
    std::string label_type;                  // stored label type, e.g. "int32"
    std::vector<std::uint64_t> label_counts; // (classes) histogram of the labels
};

struct DatasetInfo {
    std::string path;
    int classes = 0;
    std::uint64_t features = 0; // product of per-sample image dims
    std::string source;         // "" when the attribute is absent
    std::string created_by;     // "" when the attribute is absent
    SplitInfo train, test;
    bool has_val = false; // the file has the optional /val split
    SplitInfo val;
    // Throws Error naming the file when asked for /val and the file has none.
    const SplitInfo& split(Split s) const;
};

// Opens and validates a dataset file against the schema; throws Error naming the file and
// the first mismatch (missing file, not HDF5, missing group/dataset, wrong rank or dtype,
// count mismatch, empty split, label out of range, missing or bad `classes`). Reads every
// label once (to check the range and count the histogram), never the images.
DatasetInfo inspect_dataset(const std::string& path);

// Throws Error when the dataset's features do not match the network's input width:
// "data.h5: 784 features per sample but --layers starts with 100".
void require_features(const DatasetInfo& d, std::uint64_t input_width);

// ---- Writing dataset files ------------------------------------------------------------------

// Labels are stored as int32 (the type the device uses), images as given.
// Images and labels are chunked by h5::chunk_rows_for (whole rows, about 256 KiB a chunk)
// and shuffle+gzip compressed.
class SplitWriter {
public:
    SplitWriter(hid_t file, Split s, std::uint64_t samples, const std::vector<std::uint64_t>& image_dims,
                h5::Dtype image_dtype, int compress_level = 4);
    // Rows [row0, row0 + rows): images (rows, features...) of the image dtype, labels (rows).
    void write(std::uint64_t row0, std::uint64_t rows, const void* images, const std::int32_t* labels);

private:
    h5::Handle group_, images_, labels_;
    h5::Dtype dtype_;
};

void set_dataset_attributes(hid_t file, int classes, const std::string& source, const std::string& created_by);

} // namespace ompml
