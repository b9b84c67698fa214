// Synthetic dataset: a learnable classification problem of any size, a pure function of the
// seed. Each class is a mixture of `modes` Gaussian clusters in F dimensions (so a linear model
// is not enough and an MLP has something to learn); centres are N(0, (4/sqrt F)^2) per
// coordinate (about 5.7 noise sigmas apart whatever F), noise N(0, 1). A value x maps to
// 128 + 32 x clamped to [0, 255]: rounded for uint8, divided by 255 (unrounded) for float32, so
// both dtypes give nearly the same normalised input.
//
// Random streams (ompml::Rng, seed = the seed): centres stream kSynthStream + 0, element
// (c*modes + m)*F + f; labels and modes of split s (train 0, test 1) stream kSynthStream + 1 + s,
// element i; noise of split s stream kSynthStream + 3 + s, element i*F + f. So a sample does not
// depend on the split sizes, the chunking or the thread count.
#pragma once

#include "io/h5.hpp"

#include <cstdint>
#include <string>

namespace ompml {

constexpr std::uint64_t kSynthStream = 0x53594E5400000000ull; // "SYNT"

// Limits write_synth and synth_rows check (with an error naming the flag and the value):
constexpr int kSynthMaxClasses = 1 << 24;                          // labels are int32, histograms per class
constexpr std::uint64_t kSynthMaxFeatures = 2147483647;            // a model's input width is an int
constexpr std::uint64_t kSynthMaxCentres = std::uint64_t{1} << 30; // classes x modes x features floats (4 GiB)

struct SynthOptions {
    std::uint64_t train = 60000, test = 10000;
    std::uint64_t features = 784;
    int classes = 10;
    int modes = 2; // clusters per class
    std::uint64_t seed = 1;
    h5::Dtype dtype = h5::Dtype::u8; // u8 or f32
    std::uint64_t chunk_rows = 8192; // generated and written this many rows at a time
};

// Throws Error when opt is outside the limits above (or any count is 0): "synth: --features 0
// must be >= 1". Both functions below check it first.
void validate_synth(const SynthOptions& opt);

// Generates rows [row0, row0 + rows) of a split: images (rows, features) of opt.dtype,
// labels (rows). Pure function of (opt.seed, features, classes, modes, split, row).
void synth_rows(const SynthOptions& opt, bool test_split, std::uint64_t row0, std::uint64_t rows, void* images,
                std::int32_t* labels);

// Writes a dataset file (data/README.md schema; images (N, F)) atomically.
void write_synth(const SynthOptions& opt, const std::string& out);

} // namespace ompml
