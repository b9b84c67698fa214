// Synthetic Gaussian-mixture dataset (see synth.hpp for the exact recipe), generated in row
// chunks on the host with OpenMP threads and written chunk by chunk, so memory stays bounded
// for any N.
#include "io/synth.hpp"

#include "core/check.hpp"
#include "core/rng.hpp"
#include "io/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ompml {
namespace {

// "synth: --features 0 must be >= 1": the flag of ompml-data synth that sets the value.
void require_in(const char* flag, std::uint64_t v, std::uint64_t lo, std::uint64_t hi)
{
    if (v < lo)
        throw Error("synth: " + std::string(flag) + " " + std::to_string(v) + " must be >= " + std::to_string(lo));
    if (v > hi)
        throw Error("synth: " + std::string(flag) + " " + std::to_string(v) + " must be <= " + std::to_string(hi));
}

// (classes * modes, features) cluster centres.
std::vector<float> centres(const SynthOptions& o)
{
    const Rng rng(o.seed, kSynthStream + 0);
    const float spread = 4.0f / std::sqrt(static_cast<float>(o.features));
    std::vector<float> c(static_cast<std::size_t>(o.classes) * o.modes * o.features);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = spread * rng.normal(i);
    return c;
}

void generate(const SynthOptions& o, const std::vector<float>& centre, bool test_split, std::uint64_t row0,
              std::uint64_t rows, void* images, std::int32_t* labels)
{
    const Rng pick(o.seed, kSynthStream + 1 + (test_split ? 1 : 0));
    const Rng noise(o.seed, kSynthStream + 3 + (test_split ? 1 : 0));
    const std::uint64_t F = o.features;
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(rows); ++r) {
        const std::uint64_t i = row0 + static_cast<std::uint64_t>(r);
        const Philox4 b = pick.bits(i);
        const auto c =
            static_cast<std::uint32_t>((std::uint64_t{b.v[2]} * static_cast<std::uint32_t>(o.classes)) >> 32);
        const auto m = static_cast<std::uint32_t>((std::uint64_t{b.v[3]} * static_cast<std::uint32_t>(o.modes)) >> 32);
        labels[r] = static_cast<std::int32_t>(c);
        const float* mu = centre.data() + (std::uint64_t{c} * o.modes + m) * F; // (F)
        for (std::uint64_t f = 0; f < F; ++f) {
            const float v = 128.0f + 32.0f * (mu[f] + noise.normal(i * F + f));
            const float clamped = std::min(255.0f, std::max(0.0f, v));
            if (o.dtype == h5::Dtype::u8)
                static_cast<std::uint8_t*>(images)[r * F + f] = static_cast<std::uint8_t>(std::lround(clamped));
            else
                static_cast<float*>(images)[r * F + f] = clamped / 255.0f;
        }
    }
}

} // namespace

void validate_synth(const SynthOptions& o)
{
    constexpr std::uint64_t kMax = ~std::uint64_t{0};
    require_in("--train", o.train, 1, kMax);
    require_in("--test", o.test, 1, kMax);
    require_in("--features", o.features, 1, kSynthMaxFeatures);
    // Signed counts: a negative one reads as a huge unsigned value, caught by the upper bound
    // with the value shown as given.
    if (o.classes < 1) throw Error("synth: --classes " + std::to_string(o.classes) + " must be >= 1");
    require_in("--classes", static_cast<std::uint64_t>(o.classes), 1, kSynthMaxClasses);
    if (o.modes < 1) throw Error("synth: --modes " + std::to_string(o.modes) + " must be >= 1");
    require(o.dtype == h5::Dtype::u8 || o.dtype == h5::Dtype::f32, "synth: --dtype must be uint8 or float32");
    require(o.chunk_rows > 0, "synth: chunk_rows must be > 0");
    // The cluster centres are held in memory: classes x modes x features floats.
    const std::uint64_t centres = static_cast<std::uint64_t>(o.classes) * static_cast<std::uint64_t>(o.modes);
    if (centres > kSynthMaxCentres / o.features)
        throw Error("synth: --classes " + std::to_string(o.classes) + " x --modes " + std::to_string(o.modes) +
                    " x --features " + std::to_string(o.features) + " cluster centre values exceed " +
                    std::to_string(kSynthMaxCentres) + " (4 bytes each, held in memory)");
    // A split's image bytes must be countable (HDF5 sizes are 64-bit).
    const std::uint64_t elem = o.dtype == h5::Dtype::u8 ? 1 : 4;
    for (const auto& [flag, n] : {std::pair{"--train", o.train}, std::pair{"--test", o.test}})
        if (n > kMax / o.features / elem)
            throw Error("synth: " + std::string(flag) + " " + std::to_string(n) + " x --features " +
                        std::to_string(o.features) + " images do not fit a 64-bit byte count");
}

void synth_rows(const SynthOptions& opt, bool test_split, std::uint64_t row0, std::uint64_t rows, void* images,
                std::int32_t* labels)
{
    validate_synth(opt);
    generate(opt, centres(opt), test_split, row0, rows, images, labels);
}

void write_synth(const SynthOptions& opt, const std::string& out)
{
    validate_synth(opt);
    const std::size_t elem = opt.dtype == h5::Dtype::u8 ? 1 : 4;
    // Memory: the cluster centres plus one chunk of rows; without it, std::bad_alloc would be
    // all the user reads, naming neither the file nor the sizes.
    const std::uint64_t chunk_bytes = std::min(opt.chunk_rows, std::max(opt.train, opt.test)) * opt.features * elem;
    std::vector<float> centre;
    std::vector<unsigned char> images; // (chunk, F) of dtype, reused by both splits
    try {
        centre = centres(opt);
        images.resize(chunk_bytes);
    } catch (const std::bad_alloc&) {
        const std::uint64_t centre_bytes = static_cast<std::uint64_t>(opt.classes) *
            static_cast<std::uint64_t>(opt.modes) * opt.features * sizeof(float);
        throw Error(out + ": synth: out of memory for " + std::to_string(centre_bytes + chunk_bytes) +
                    " bytes (cluster centres and one chunk of rows; --features " + std::to_string(opt.features) + ")");
    }
    h5::create_atomically(out, [&](hid_t file) {
        for (const bool test : {false, true}) {
            const std::uint64_t n = test ? opt.test : opt.train;
            SplitWriter w(file, test ? Split::test : Split::train, n, {opt.features}, opt.dtype);
            const std::uint64_t chunk = std::min(opt.chunk_rows, n);
            std::vector<std::int32_t> labels(chunk); // (chunk)
            for (std::uint64_t row0 = 0; row0 < n; row0 += chunk) {
                const std::uint64_t rows = std::min(chunk, n - row0);
                generate(opt, centre, test, row0, rows, images.data(), labels.data());
                w.write(row0, rows, images.data(), labels.data());
            }
        }
        const std::string source = "synth: Gaussian mixture, seed=" + std::to_string(opt.seed) +
            " features=" + std::to_string(opt.features) + " classes=" + std::to_string(opt.classes) +
            " modes=" + std::to_string(opt.modes) + " train=" + std::to_string(opt.train) +
            " test=" + std::to_string(opt.test) + " dtype=" + h5::dtype_name(opt.dtype);
        set_dataset_attributes(file, opt.classes, source, "ompml-data synth");
        h5::set_attr(file, "seed", static_cast<std::int64_t>(opt.seed));
    });
}

} // namespace ompml
