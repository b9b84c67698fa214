// Images without a training split around them, for ompml-predict: an HDF5 file's
// /<split>/images (a dataset file, data/README.md) or, in a file that holds only images, its
// /images; or an IDX file of unsigned bytes (MNIST's format: images (N, H, W), gzip or raw).
// Labels are read where the file has them (/<split>/labels), for reports; they are not needed.
#pragma once

#include "io/dataset.hpp"
#include "io/h5.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ompml {

struct Images {
    std::vector<unsigned char> bytes; // (rows, features) as stored
    h5::Dtype dtype = h5::Dtype::u8;  // u8 (normalised x / 255, as training does) or f32 (as is)
    std::uint64_t rows = 0, features = 0;
    std::string source;               // "/test/images", "/images" or "IDX file"
    std::vector<std::int32_t> labels; // (rows) where the file has them, else empty
};

// Reads every image of path (HDF5 or IDX). Throws Error naming the file and what is wrong:
// no images where looked, an unsupported type or rank, no rows, a non-finite float32 value
// ("F: /images: row 7, column 5 is nan").
Images read_images(const std::string& path, Split split);

} // namespace ompml
