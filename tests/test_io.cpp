// io tests: the dataset schema checker (one test per kind of bad file, each checking its
// message), the IDX importer and synth writer, and the Loader (epoch order, rank slices,
// in-memory vs streaming, resume, device normalisation, errors from the reader thread).
// Device buffers come from the omp backend, so the offload-check build copies through a
// separate device memory.
#define BOOST_TEST_MODULE test_io
#include "support.hpp"

#include "io/dataset.hpp"
#include "io/h5.hpp"
#include "io/idx.hpp"
#include "io/loader.hpp"
#include "io/synth.hpp"

#include "temp_dir.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <sys/resource.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ompml;

namespace {

using test::TempDir;

// Runs fn, which must throw ompml::Error whose message is exactly `expected`.
void expect_error(const std::function<void()>& fn, const std::string& expected)
{
    try {
        fn();
    } catch (const Error& e) {
        BOOST_CHECK_EQUAL(std::string(e.what()), expected);
        return;
    }
    BOOST_ERROR("no error thrown; expected: " << expected);
}

// A small dataset file built with the h5 wrappers; each field can be made wrong on purpose.
// Both splits get the same content unless the test changes the train split.
struct Spec {
    bool train_group = true;
    bool train_labels = true;
    std::vector<std::uint64_t> image_dims{6, 4}; // (N, F) for /train/images
    h5::Dtype image_dtype = h5::Dtype::u8;
    std::vector<std::uint64_t> label_dims{6}; // /train/labels
    h5::Dtype label_dtype = h5::Dtype::i32;
    std::vector<std::int32_t> labels{0, 1, 2, 0, 1, 2};
    bool classes_attr = true;
    std::int64_t classes = 3;
};

std::uint64_t product(const std::vector<std::uint64_t>& d)
{
    return std::accumulate(d.begin(), d.end(), std::uint64_t{1}, std::multiplies<>());
}

void write_spec(const std::string& path, const Spec& s)
{
    h5::Handle f = h5::create(path);
    for (const std::string g : {"train", "test"}) {
        const bool train = g == "train";
        if (train && !s.train_group) continue;
        h5::Handle grp = h5::create_group(f, g);
        const auto idims = train ? s.image_dims : std::vector<std::uint64_t>{6, 4};
        std::vector<double> zeros(product(idims), 0.0); // big enough for any dtype
        h5::write(grp, "images", train ? s.image_dtype : h5::Dtype::u8, zeros.data(), idims);
        if (train && !s.train_labels) continue;
        const auto ldims = train ? s.label_dims : std::vector<std::uint64_t>{6};
        const auto ltype = train ? s.label_dtype : h5::Dtype::i32;
        std::vector<std::int32_t> lab = train ? s.labels : std::vector<std::int32_t>{0, 1, 2, 0, 1, 2};
        lab.resize(product(ldims), 0);
        if (ltype == h5::Dtype::f32) {
            const std::vector<float> fl(lab.begin(), lab.end());
            h5::write(grp, "labels", h5::Dtype::f32, fl.data(), ldims);
        } else {
            h5::write(grp, "labels", h5::Dtype::i32, lab.data(), ldims);
        }
    }
    if (s.classes_attr) h5::set_attr(f, "classes", s.classes);
    h5::set_attr(f, "source", std::string("test_io"));
}

std::string bad_file(const TempDir& t, const Spec& s)
{
    const std::string p = t / "data.h5";
    write_spec(p, s);
    return p;
}

// All batches of one epoch for ranks 0..P-1, concatenated per step in rank order:
// (x of every row, y of every row) as downloaded from the device.
struct EpochData {
    std::vector<std::vector<float>> x;        // per step: (global_rows, F)
    std::vector<std::vector<std::int32_t>> y; // per step: (global_rows)
};

void append_batch(const Loader& L, const DeviceBatch& b, std::vector<float>& x, std::vector<std::int32_t>& y,
                  const MemorySpace& mem)
{
    const std::size_t F = L.features();
    std::vector<float> hx(b.rows * F);
    std::vector<std::int32_t> hy(b.rows);
    if (b.rows > 0) {
        mem.to_host(hx.data(), b.x, hx.size() * sizeof(float));
        mem.to_host(hy.data(), b.y, hy.size() * sizeof(std::int32_t));
    }
    x.insert(x.end(), hx.begin(), hx.end());
    y.insert(y.end(), hy.begin(), hy.end());
}

EpochData run_epoch(Backend& be, LoaderOptions opt, int P, std::int64_t epoch, std::int64_t first_step = 0)
{
    std::vector<std::unique_ptr<Loader>> loaders;
    for (int r = 0; r < P; ++r) {
        opt.rank = r;
        opt.nranks = P;
        loaders.push_back(std::make_unique<Loader>(be, opt));
        loaders.back()->start_epoch(epoch, first_step);
    }
    EpochData e;
    for (std::int64_t step = first_step;; ++step) {
        std::vector<float> x;
        std::vector<std::int32_t> y;
        int ended = 0, global_rows = -1;
        for (auto& L : loaders) {
            DeviceBatch b;
            if (!L->next(b)) {
                ++ended;
                continue;
            }
            BOOST_REQUIRE_EQUAL(b.step_in_epoch, step);
            BOOST_REQUIRE(b.rows <= L->max_rows());
            if (global_rows >= 0) BOOST_REQUIRE_EQUAL(b.global_rows, global_rows);
            global_rows = b.global_rows;
            append_batch(*L, b, x, y, be.memory());
        }
        BOOST_REQUIRE(ended == 0 || ended == P); // all ranks end the epoch together
        if (ended == P) break;
        BOOST_REQUIRE_EQUAL(static_cast<int>(y.size()), global_rows);
        e.x.push_back(std::move(x));
        e.y.push_back(std::move(y));
    }
    BOOST_REQUIRE_EQUAL(static_cast<std::int64_t>(e.y.size()), loaders[0]->steps_per_epoch() - first_step);
    return e;
}

void check_same(const EpochData& a, const EpochData& b, const std::string& what)
{
    BOOST_REQUIRE_EQUAL(a.y.size(), b.y.size());
    for (std::size_t s = 0; s < a.y.size(); ++s) {
        BOOST_CHECK_MESSAGE(a.y[s] == b.y[s], what << ": labels differ at step " << s);
        BOOST_CHECK_MESSAGE(a.x[s] == b.x[s], what << ": images differ at step " << s);
    }
}

std::string synth_file(const TempDir& t, const std::string& name, h5::Dtype dtype = h5::Dtype::u8,
                       std::uint64_t train = 103)
{
    SynthOptions o;
    o.train = train;
    o.test = 17;
    o.features = 5;
    o.classes = 3;
    o.seed = 42;
    o.dtype = dtype;
    o.chunk_rows = 10; // several generate+write chunks even for a small file
    const std::string p = t / name;
    write_synth(o, p);
    return p;
}

std::string read_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

// ---- Schema checker: one test per kind of bad input -------------------------------------------

BOOST_AUTO_TEST_CASE(schema_missing_file)
{
    TempDir t;
    const std::string p = t / "nope.h5";
    expect_error([&] { inspect_dataset(p); }, p + ": no such file");
}

BOOST_AUTO_TEST_CASE(schema_not_hdf5)
{
    TempDir t;
    const std::string p = t / "text.h5";
    std::ofstream(p) << "this is not HDF5\n";
    expect_error([&] { inspect_dataset(p); }, p + ": not an HDF5 file");
}

BOOST_AUTO_TEST_CASE(schema_missing_group)
{
    TempDir t;
    Spec s;
    s.train_group = false;
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": missing group /train");
}

BOOST_AUTO_TEST_CASE(schema_missing_dataset)
{
    TempDir t;
    Spec s;
    s.train_labels = false;
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": missing dataset /train/labels");
}

BOOST_AUTO_TEST_CASE(schema_wrong_rank_images)
{
    TempDir t;
    Spec s;
    s.image_dims = {6, 2, 2, 1};
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); },
                 p + ": /train/images: rank 4 (6x2x2x1), expected 2 (N, F) or 3 (N, H, W)");
    s.image_dims = {6};
    write_spec(p, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/images: rank 1 (6), expected 2 (N, F) or 3 (N, H, W)");
}

BOOST_AUTO_TEST_CASE(schema_wrong_rank_labels)
{
    TempDir t;
    Spec s;
    s.label_dims = {6, 1};
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/labels: rank 2 (6x1), expected 1 (N)");
}

BOOST_AUTO_TEST_CASE(schema_wrong_dtype_images)
{
    TempDir t;
    Spec s;
    s.image_dtype = h5::Dtype::f64;
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/images: dtype float64, expected uint8 or float32");
    s.image_dtype = h5::Dtype::i32;
    write_spec(p, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/images: dtype int32, expected uint8 or float32");
}

BOOST_AUTO_TEST_CASE(schema_wrong_dtype_labels)
{
    TempDir t;
    Spec s;
    s.label_dtype = h5::Dtype::f32;
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/labels: dtype float32, expected an integer type");
}

BOOST_AUTO_TEST_CASE(schema_count_mismatch)
{
    TempDir t;
    Spec s;
    s.label_dims = {5};
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train: 6 images but 5 labels");
}

BOOST_AUTO_TEST_CASE(schema_label_out_of_range)
{
    TempDir t;
    Spec s;
    s.labels = {0, 1, 2, 0, 12, 2};
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/labels: label 12 at row 4 >= classes (3)");
    s.labels = {0, 1, 2, -1, 1, 2};
    write_spec(p, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train/labels: label -1 at row 3 < 0");
}

BOOST_AUTO_TEST_CASE(schema_empty_split)
{
    TempDir t;
    Spec s;
    s.image_dims = {0, 4};
    s.label_dims = {0};
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": /train: empty split (0 samples)");
}

BOOST_AUTO_TEST_CASE(schema_missing_classes)
{
    TempDir t;
    Spec s;
    s.classes_attr = false;
    const std::string p = bad_file(t, s);
    expect_error([&] { inspect_dataset(p); }, p + ": missing root attribute 'classes' (the number of classes)");
    s.classes_attr = true;
    s.classes = 0;
    write_spec(p, s);
    expect_error([&] { inspect_dataset(p); }, p + ": root attribute 'classes' must be in [1, 2^24], got 0");
}

BOOST_AUTO_TEST_CASE(schema_feature_mismatch)
{
    TempDir t;
    const std::string p = bad_file(t, Spec{});
    const DatasetInfo d = inspect_dataset(p);
    BOOST_CHECK_EQUAL(d.features, 4u);
    BOOST_CHECK_EQUAL(d.classes, 3);
    require_features(d, 4); // no throw
    expect_error([&] { require_features(d, 100); }, p + ": 4 features per sample but --layers starts with 100");
}

BOOST_AUTO_TEST_CASE(schema_valid_file_histogram)
{
    TempDir t;
    Spec s;
    s.labels = {2, 2, 0, 1, 2, 0};
    const DatasetInfo d = inspect_dataset(bad_file(t, s));
    BOOST_CHECK(d.train.label_counts == (std::vector<std::uint64_t>{2, 1, 3}));
    BOOST_CHECK_EQUAL(d.source, "test_io");
    BOOST_CHECK_EQUAL(d.train.label_type, "int32");
}

// ---- synth and IDX ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(synth_is_deterministic)
{
    TempDir t;
    const std::string a = synth_file(t, "a.h5"), b = synth_file(t, "b.h5");
    BOOST_CHECK(read_bytes(a) == read_bytes(b)); // same seed: identical file bytes
    const DatasetInfo d = inspect_dataset(a);
    BOOST_CHECK_EQUAL(d.train.samples, 103u);
    BOOST_CHECK_EQUAL(d.test.samples, 17u);
    BOOST_CHECK_EQUAL(d.features, 5u);
    BOOST_CHECK_EQUAL(d.classes, 3);

    // Rows do not depend on the chunking: generate rows 7..29 directly and compare.
    SynthOptions o;
    o.train = 103, o.test = 17, o.features = 5, o.classes = 3, o.seed = 42;
    std::vector<std::uint8_t> img(23 * 5);
    std::vector<std::int32_t> lab(23);
    synth_rows(o, false, 7, 23, img.data(), lab.data());
    h5::Handle f = h5::open_read(a);
    const auto all_img = h5::read_all<std::uint8_t>(f, "train/images");
    const auto all_lab = h5::read_all<std::int32_t>(f, "train/labels");
    BOOST_CHECK(std::equal(img.begin(), img.end(), all_img.begin() + 7 * 5));
    BOOST_CHECK(std::equal(lab.begin(), lab.end(), all_lab.begin() + 7));

    // Another seed gives other data; no temporary file is left behind.
    o.seed = 43;
    write_synth(o, t / "c.h5");
    BOOST_CHECK(read_bytes(a) != read_bytes(t / "c.h5"));
    for (const auto& e : fs::directory_iterator(t.dir))
        BOOST_CHECK_MESSAGE(e.path().string().find(".tmp.") == std::string::npos, "left over: " << e.path());
}

BOOST_AUTO_TEST_CASE(idx_import_round_trip)
{
    for (const bool gz : {false, true}) {
        TempDir t;
        // Train 5 images of 4x3, test 2: every byte distinct enough to catch a transposition.
        std::vector<std::uint8_t> tr_img(5 * 4 * 3), te_img(2 * 4 * 3), tr_lab{3, 9, 0, 1, 3}, te_lab{7, 2};
        for (std::size_t i = 0; i < tr_img.size(); ++i) tr_img[i] = static_cast<std::uint8_t>(i * 7 + 1);
        for (std::size_t i = 0; i < te_img.size(); ++i) te_img[i] = static_cast<std::uint8_t>(250 - i);
        const std::string ext = gz ? ".gz" : "";
        write_idx(t / ("train-images-idx3-ubyte" + ext), {5, 4, 3}, tr_img, gz);
        write_idx(t / ("train-labels-idx1-ubyte" + ext), {5}, tr_lab, gz);
        write_idx(t / ("t10k-images-idx3-ubyte" + ext), {2, 4, 3}, te_img, gz);
        write_idx(t / ("t10k-labels-idx1-ubyte" + ext), {2}, te_lab, gz);
        const std::string out = t / "out.h5";
        const ImportReport r = import_idx(t.dir.string(), out);
        BOOST_CHECK_EQUAL(r.train, 5u);
        BOOST_CHECK_EQUAL(r.test, 2u);

        const DatasetInfo d = inspect_dataset(out);
        BOOST_CHECK_EQUAL(d.classes, 10);
        BOOST_CHECK(d.train.image_dims == (std::vector<std::uint64_t>{4, 3}));
        h5::Handle f = h5::open_read(out);
        BOOST_CHECK(h5::read_all<std::uint8_t>(f, "train/images") == tr_img);
        BOOST_CHECK(h5::read_all<std::uint8_t>(f, "test/images") == te_img);
        BOOST_CHECK(h5::read_all<std::int32_t>(f, "train/labels") ==
                    std::vector<std::int32_t>(tr_lab.begin(), tr_lab.end()));
        BOOST_CHECK(h5::read_all<std::int32_t>(f, "test/labels") ==
                    std::vector<std::int32_t>(te_lab.begin(), te_lab.end()));
        BOOST_CHECK_EQUAL(h5::get_attr_string(f, "created_by"), "ompml-data import-idx");
    }
}

BOOST_AUTO_TEST_CASE(idx_bad_files)
{
    TempDir t;
    const std::string p = t / "x-idx1-ubyte";
    write_idx(p, {4}, {1, 2, 3, 4}, false);
    expect_error([&] { read_idx(p, 3); }, p + ": IDX rank 1, expected 3");
    std::ofstream(p, std::ios::binary) << std::string("\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", 10);
    expect_error([&] { read_idx(p, 1); }, p + ": truncated: header says 5 data bytes, found 2");
    std::ofstream(p, std::ios::binary) << "GIF89a";
    expect_error([&] { read_idx(p, 1); }, p + ": not an IDX file (bad magic)");
    // A failed import (label 12 >= 10) leaves no output and no temporary file.
    write_idx(t / "train-images-idx3-ubyte", {1, 2, 2}, {0, 0, 0, 0}, false);
    write_idx(t / "train-labels-idx1-ubyte", {1}, {12}, false);
    write_idx(t / "t10k-images-idx3-ubyte", {1, 2, 2}, {0, 0, 0, 0}, false);
    write_idx(t / "t10k-labels-idx1-ubyte", {1}, {0}, false);
    expect_error([&] { import_idx(t.dir.string(), t / "out.h5"); },
                 t / "train-labels-idx1-ubyte" + ": label 12 at row 0 >= classes (10)");
    BOOST_CHECK(!fs::exists(t / "out.h5"));
}

// ---- epoch order and slices ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(epoch_order_is_a_permutation_of_seed_and_epoch)
{
    for (const std::uint64_t n : {0u, 1u, 2u, 97u, 1000u}) {
        auto o = epoch_order(n, 7, 3);
        BOOST_CHECK(o == epoch_order(n, 7, 3)); // a pure function
        std::sort(o.begin(), o.end());
        std::vector<std::uint64_t> id(n);
        std::iota(id.begin(), id.end(), std::uint64_t{0});
        BOOST_CHECK(o == id);
    }
    BOOST_CHECK(epoch_order(1000, 7, 3) != epoch_order(1000, 7, 4)); // epochs differ
    BOOST_CHECK(epoch_order(1000, 7, 3) != epoch_order(1000, 8, 3)); // seeds differ
    // Rough uniformity: where element 0 lands over many epochs covers both halves.
    int first_half = 0;
    for (int e = 0; e < 200; ++e) {
        const auto o = epoch_order(10, 1, e);
        first_half += std::find(o.begin(), o.end(), 0u) - o.begin() < 5;
    }
    BOOST_CHECK(first_half > 70 && first_half < 130);
}

BOOST_AUTO_TEST_CASE(rank_slices_tile_the_batch)
{
    for (int rows : {0, 1, 2, 5, 128})
        for (int P : {1, 2, 3, 7}) {
            int next = 0;
            for (int r = 0; r < P; ++r) {
                const RowSlice s = rank_slice(rows, r, P);
                BOOST_CHECK_EQUAL(s.begin, next);
                BOOST_CHECK(s.end - s.begin <= (rows + P - 1) / P);
                next = s.end;
            }
            BOOST_CHECK_EQUAL(next, rows);
        }
}

// ---- Loader ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(loader_ranks_union_equals_single_rank)
{
    TempDir t;
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = synth_file(t, "s.h5");
    opt.seed = 9;
    for (const int B : {2, 4, 10, 200}) {
        opt.global_batch = B;
        const EpochData one = run_epoch(*be, opt, 1, 1);
        // Every sample exactly once per epoch.
        std::size_t total = 0;
        for (const auto& y : one.y) total += y.size();
        BOOST_CHECK_EQUAL(total, 103u);
        for (const int P : {2, 3})
            check_same(run_epoch(*be, opt, P, 1), one, "B=" + std::to_string(B) + " P=" + std::to_string(P));
    }
}

BOOST_AUTO_TEST_CASE(loader_memory_and_streaming_agree)
{
    TempDir t;
    auto be = make_backend("omp");
    for (const h5::Dtype dt : {h5::Dtype::u8, h5::Dtype::f32}) {
        LoaderOptions opt;
        // 3000 rows: several storage chunks, so the row runs of a batch span chunks.
        opt.path = synth_file(t, std::string("s_") + h5::dtype_name(dt) + ".h5", dt, 3000);
        opt.global_batch = 64;
        for (const int P : {1, 2}) {
            const EpochData mem = run_epoch(*be, opt, P, 2);
            opt.streaming = true;
            const EpochData str = run_epoch(*be, opt, P, 2);
            opt.streaming = false;
            check_same(mem, str, std::string("memory vs streaming ") + h5::dtype_name(dt));
        }
        // Test split, file order: labels come out exactly as stored.
        opt.split = Split::test;
        opt.shuffle = false;
        const EpochData ev = run_epoch(*be, opt, 1, 5);
        h5::Handle f = h5::open_read(opt.path);
        const auto lab = h5::read_all<std::int32_t>(f, "test/labels");
        std::vector<std::int32_t> got;
        for (const auto& y : ev.y) got.insert(got.end(), y.begin(), y.end());
        BOOST_CHECK(got == lab);
    }
}

BOOST_AUTO_TEST_CASE(loader_resume_mid_epoch)
{
    TempDir t;
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = synth_file(t, "s.h5");
    opt.global_batch = 8;
    for (const bool streaming : {false, true}) {
        opt.streaming = streaming;
        const EpochData full = run_epoch(*be, opt, 1, 3);
        for (const std::int64_t k : {1, 5, 12, 13}) {
            EpochData tail = run_epoch(*be, opt, 2, 3, k);
            EpochData ref;
            ref.x.assign(full.x.begin() + k, full.x.end());
            ref.y.assign(full.y.begin() + k, full.y.end());
            check_same(tail, ref, "resume at step " + std::to_string(k));
        }
        // Restarting a loader mid-epoch (a few batches consumed) gives the same as a fresh one.
        Loader L(*be, opt);
        L.start_epoch(0);
        DeviceBatch b;
        for (int i = 0; i < 3; ++i) BOOST_REQUIRE(L.next(b));
        L.start_epoch(3, 5);
        BOOST_REQUIRE(L.next(b));
        std::vector<float> x;
        std::vector<std::int32_t> y;
        append_batch(L, b, x, y, be->memory());
        BOOST_CHECK(y == full.y[5]);
        BOOST_CHECK(x == full.x[5]);
    }
}

BOOST_AUTO_TEST_CASE(loader_normalises_on_device)
{
    TempDir t;
    auto be = make_backend("omp");
    // Images whose bytes cover 0..255; labels all 0.
    const std::uint64_t N = 300, F = 7;
    std::vector<std::uint8_t> img(N * F);
    for (std::size_t i = 0; i < img.size(); ++i) img[i] = static_cast<std::uint8_t>((i * 37) % 256);
    const std::vector<std::int32_t> lab(N, 0);
    const std::string p = t / "n.h5";
    h5::create_atomically(p, [&](hid_t f) {
        for (const Split s : {Split::train, Split::test})
            SplitWriter(f, s, N, {F}, h5::Dtype::u8).write(0, N, img.data(), lab.data());
        set_dataset_attributes(f, 1, "test", "test_io");
    });
    LoaderOptions opt;
    opt.path = p;
    opt.global_batch = 64;
    opt.shuffle = false;
    const EpochData e = run_epoch(*be, opt, 1, 0);
    std::vector<float> got, ref(img.size());
    for (const auto& x : e.x) got.insert(got.end(), x.begin(), x.end());
    for (std::size_t i = 0; i < img.size(); ++i) ref[i] = static_cast<float>(img[i]) / 255.0f;
    // x * (1/255) vs x / 255: at most one rounding apart, so rtol of a few float ulps.
    test::check_close(got, ref, 0.0, 4e-7, "normalize_u8 vs x/255");
}

BOOST_AUTO_TEST_CASE(loader_bad_options)
{
    TempDir t;
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = synth_file(t, "s.h5");
    opt.global_batch = 0;
    expect_error([&] { Loader L(*be, opt); }, "loader: batch size must be >= 1, got 0");
    opt.global_batch = 4;
    opt.rank = 2;
    opt.nranks = 2;
    expect_error([&] { Loader L(*be, opt); }, "loader: rank 2 of 2 is out of range");
    opt.path = t / "missing.h5";
    opt.rank = 0;
    expect_error([&] { Loader L(*be, opt); }, opt.path + ": no such file");
}

BOOST_AUTO_TEST_CASE(loader_reader_error_is_rethrown)
{
    TempDir t;
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = synth_file(t, "s.h5", h5::Dtype::u8, 20000);
    opt.global_batch = 32;
    opt.streaming = true;
    Loader L(*be, opt);
    // Cut the file after the loader opened it: the reader thread's chunk reads now fail.
    fs::resize_file(opt.path, 4096);
    L.start_epoch(0);
    DeviceBatch b;
    bool threw = false;
    try {
        for (int i = 0; i < 1000 && L.next(b); ++i) {}
    } catch (const Error& e) {
        threw = true;
        BOOST_TEST_MESSAGE("reader error: " << e.what());
    }
    BOOST_CHECK(threw);
    BOOST_CHECK(!L.next(b)); // the epoch is over after an error
}

BOOST_AUTO_TEST_CASE(loader_streaming_while_writing_hdf5)
{
    // The main thread writes HDF5 files (as a checkpoint writer would) while the streaming
    // reader thread reads: h5::lock() keeps the non-thread-safe library consistent.
    TempDir t;
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = synth_file(t, "s.h5", h5::Dtype::u8, 3000);
    opt.global_batch = 16;
    opt.streaming = true;
    Loader L(*be, opt);
    const EpochData ref = [&] {
        LoaderOptions o = opt;
        o.streaming = false;
        return run_epoch(*be, o, 1, 0);
    }();
    L.start_epoch(0);
    DeviceBatch b;
    std::int64_t step = 0;
    const std::vector<float> params(10000, 1.5f);
    while (L.next(b)) {
        std::vector<float> x;
        std::vector<std::int32_t> y;
        append_batch(L, b, x, y, be->memory());
        BOOST_REQUIRE(y == ref.y[step] && x == ref.x[step]);
        h5::create_atomically(t / "ckpt.h5", [&](hid_t f) { h5::write(f, "params", params); });
        ++step;
    }
    BOOST_CHECK_EQUAL(step, L.steps_per_epoch());
}

// ---- Damaged and unusable inputs (issue 11, items 6 and 7) -----------------------------------

namespace {

// Runs fn, which must throw ompml::Error containing every one of `needles`; returns the message.
std::string error_containing(const std::function<void()>& fn, const std::vector<std::string>& needles)
{
    try {
        fn();
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& n : needles)
            BOOST_CHECK_MESSAGE(msg.find(n) != std::string::npos, "message '" << msg << "' lacks '" << n << "'");
        // Errors name the user's files and objects, never our sources (check.hpp).
        BOOST_CHECK_MESSAGE(msg.find(".cpp") == std::string::npos && msg.find(".hpp") == std::string::npos,
                            "message names a source file: " << msg);
        return msg;
    }
    BOOST_ERROR("no error thrown; expected one containing '" << needles.front() << "'");
    return "";
}

// Sets element (row, col) of a split's float32 images to v, in place.
void poke_image(const std::string& path, const std::string& split, std::uint64_t row, std::uint64_t col, float v)
{
    h5::Handle f = h5::open_rw(path);
    h5::Handle ds = h5::open_dataset(f, split + "/images");
    h5::Handle space(H5Dget_space(ds));
    const hsize_t start[2] = {row, col}, count[2] = {1, 1};
    H5_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr));
    h5::Handle mem(H5Screate_simple(2, count, nullptr));
    H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &v));
}

// Reads a whole epoch of every batch (the streaming reader fails inside it).
void drain(Loader& L)
{
    L.start_epoch(0);
    DeviceBatch b;
    while (L.next(b)) {}
}

} // namespace

BOOST_AUTO_TEST_CASE(schema_classes_must_be_one_integer)
{
    TempDir t;
    Spec s;
    const std::string p = bad_file(t, s);
    const auto set_classes = [&](const std::vector<std::int64_t>& v) {
        h5::Handle f = h5::open_rw(p);
        H5_CHECK(H5Adelete(f, "classes"));
        const hsize_t n = v.size();
        h5::Handle space(H5Screate_simple(1, &n, nullptr));
        h5::Handle a(H5Acreate2(f, "classes", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT));
        H5_CHECK(H5Awrite(a, H5T_NATIVE_INT64, v.data()));
    };
    // [3, 5] used to be read as 3 (and the read overran the one-value buffer).
    set_classes({3, 5});
    expect_error([&] { inspect_dataset(p); }, p + ": root attribute 'classes' must be one integer, got [3, 5]");
    // One element, as MATLAB and R store scalars: accepted (data/README.md).
    set_classes({3});
    BOOST_CHECK_EQUAL(inspect_dataset(p).classes, 3);
    // The generic getter refuses arrays too, naming the attribute.
    set_classes({3, 5});
    h5::Handle f = h5::open_read(p);
    error_containing([&] { h5::get_attr_int(f, "classes"); }, {p, "attribute 'classes' holds 2 values, expected one"});
}

BOOST_AUTO_TEST_CASE(schema_rows_claimed_but_not_stored)
{
    // A tiny file whose datasets claim 4e9 rows but hold no data: the checker must refuse it
    // from the chunk index, before it reads (and allocates) 4e9 labels.
    TempDir t;
    const std::uint64_t N = 4000000000ull;
    const auto write_claims = [&](const std::string& p, bool chunked) {
        h5::Handle f = h5::create(p);
        for (const char* g : {"train", "test"}) {
            h5::Handle grp = h5::create_group(f, g);
            for (const char* name : {"images", "labels"}) {
                const bool img = std::string(name) == "images";
                const hsize_t dims[2] = {N, 4}, chunk[2] = {65536, 4};
                h5::Handle space(H5Screate_simple(img ? 2 : 1, dims, nullptr));
                h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
                if (chunked) H5_CHECK(H5Pset_chunk(dcpl, img ? 2 : 1, chunk));
                h5::Handle ds(H5Dcreate2(grp, name, img ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT32, space, H5P_DEFAULT, dcpl,
                                         H5P_DEFAULT));
                H5_CHECK(ds.id());
            }
        }
        h5::set_attr(f, "classes", std::int64_t{3});
    };
    const std::string chunked = t / "chunked.h5", contiguous = t / "contiguous.h5";
    write_claims(chunked, true);
    write_claims(contiguous, false);
    BOOST_TEST_MESSAGE("file sizes: " << fs::file_size(chunked) << ", " << fs::file_size(contiguous) << " bytes");
    expect_error([&] { inspect_dataset(chunked); },
                 chunked +
                     ": /train/labels: claims 4000000000 rows (16000000000 bytes) but stores only 0 of its "
                     "61036 chunks: truncated or damaged?");
    expect_error([&] { inspect_dataset(contiguous); },
                 contiguous +
                     ": /train/labels: claims 4000000000 rows (16000000000 bytes) but stores only 0 bytes: "
                     "truncated or damaged?");
}

BOOST_AUTO_TEST_CASE(schema_highly_compressed_data_is_accepted)
{
    // The size check counts chunks, not bytes: 2 MB of zeros compress to a few KB and are fine.
    TempDir t;
    const std::string p = t / "zeros.h5";
    const std::uint64_t N = 32768, F = 64;
    h5::create_atomically(p, [&](hid_t f) {
        for (const Split s : {Split::train, Split::test}) {
            SplitWriter w(f, s, N, {F}, h5::Dtype::u8, 9);
            const std::vector<std::uint8_t> img(N * F, 0);
            const std::vector<std::int32_t> lab(N, 0);
            w.write(0, N, img.data(), lab.data());
        }
        set_dataset_attributes(f, 2, "zeros", "test_io");
    });
    BOOST_TEST_MESSAGE("zeros: " << N * F * 2 << " image bytes in a file of " << fs::file_size(p) << " bytes");
    BOOST_CHECK_LT(fs::file_size(p), N * F / 10); // it is compressed, and still accepted:
    BOOST_CHECK_EQUAL(inspect_dataset(p).train.samples, N);
}

BOOST_AUTO_TEST_CASE(corrupt_compressed_chunk_names_the_data_file)
{
    // Overwrite the middle of the first compressed image chunk: the error must name the data
    // file, the dataset and the rows, keep HDF5's own text, and name none of our sources.
    TempDir t;
    const std::string p = synth_file(t, "s.h5", h5::Dtype::u8, 20000);
    haddr_t addr = 0;
    hsize_t size = 0;
    {
        h5::Handle f = h5::open_read(p);
        h5::Handle ds = h5::open_dataset(f, "train/images");
        h5::Handle space(H5Dget_space(ds));
        hsize_t offset[2];
        unsigned mask = 0;
        H5_CHECK(H5Dget_chunk_info(ds, space, 0, offset, &mask, &addr, &size));
    }
    BOOST_REQUIRE_GT(size, 64u);
    {
        std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(static_cast<std::streamoff>(addr + size / 4));
        const std::string junk(size / 2, '\x5a');
        io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = p;
    opt.global_batch = 64;
    const std::string m1 =
        error_containing([&] { Loader L(*be, opt); }, {p + ": /train/images rows 0-", ": cannot read: "});
    BOOST_TEST_MESSAGE("in memory: " << m1);
    // Streaming reads the first and last chunks when it opens (the data's fingerprint,
    // io/fingerprint.hpp), so the damaged first chunk is found there, before any step.
    opt.streaming = true;
    opt.shuffle = false;
    const std::string m2 =
        error_containing([&] { Loader L(*be, opt); }, {p + ": /train/images rows 0-", ": cannot read: "});
    BOOST_TEST_MESSAGE("streaming: " << m2);
}

BOOST_AUTO_TEST_CASE(non_finite_images_name_file_split_row_and_column)
{
    TempDir t;
    auto be = make_backend("omp");
    for (const std::string split : {"train", "test"}) {
        for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
            const std::string p = synth_file(t, "f_" + split + ".h5", h5::Dtype::f32, 103); // 103 train, 17 test rows
            const std::uint64_t row = split == "train" ? 57 : 11;
            poke_image(p, split, row, 3, bad);
            const std::string want = p + ": /" + split + "/images: row " + std::to_string(row) + ", column 3 is " +
                non_finite_name(bad) + ": float32 images must be finite (data/README.md)";
            LoaderOptions opt;
            opt.path = p;
            opt.split = split == "train" ? Split::train : Split::test;
            opt.global_batch = 16;
            // In memory: refused on load, before training starts.
            expect_error([&] { Loader L(*be, opt); }, want);
            // Streaming: refused when the batch holding that row is read (shuffled: the row named
            // is the file row, not the position in the batch).
            opt.streaming = true;
            Loader L(*be, opt);
            expect_error([&] { drain(L); }, want);
        }
    }
    // uint8 cannot hold NaN/Inf; a finite float32 file loads.
    LoaderOptions ok;
    ok.path = synth_file(t, "fine.h5", h5::Dtype::f32, 103);
    BOOST_CHECK_NO_THROW(Loader(*be, ok));
}

namespace {

// Lowers the address-space limit to what the process maps now plus `margin` bytes, restoring
// it on destruction: large allocations then fail as they would on a node without the memory.
struct AddressSpaceLimit {
    rlimit old{};
    explicit AddressSpaceLimit(std::uint64_t margin)
    {
        std::ifstream status("/proc/self/status");
        std::uint64_t vm_kb = 0;
        for (std::string line; std::getline(status, line);)
            if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stoull(line.substr(7));
        BOOST_REQUIRE_GT(vm_kb, 0u);
        BOOST_REQUIRE_EQUAL(getrlimit(RLIMIT_AS, &old), 0);
        rlimit lim = old;
        lim.rlim_cur = vm_kb * 1024 + margin;
        if (old.rlim_cur != RLIM_INFINITY) lim.rlim_cur = std::min<rlim_t>(lim.rlim_cur, old.rlim_cur);
        BOOST_REQUIRE_EQUAL(setrlimit(RLIMIT_AS, &lim), 0);
    }
    ~AddressSpaceLimit() { setrlimit(RLIMIT_AS, &old); }
};

} // namespace

BOOST_AUTO_TEST_CASE(host_allocation_failure_names_file_split_and_size)
{
    // A legitimate split of 1 GiB (zeros, gzip'ed to a few hundred KB; written as raw compressed
    // chunks, so the test takes no GiB of deflate), loaded in memory under an address-space limit
    // 64 MiB above what the process maps: the allocation fails, and the error names the file,
    // the split and the size asked for (it used to be a bare std::bad_alloc).
    TempDir t;
    const std::string p = t / "big.h5";
    const std::uint64_t N = 65536, F = 16384, chunk_rows = 16;
    {
        h5::Handle f = h5::create(p);
        const hsize_t chunk[2] = {chunk_rows, F};
        h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
        H5_CHECK(H5Pset_chunk(dcpl, 2, chunk));
        H5_CHECK(H5Pset_deflate(dcpl, 1));
        // One chunk of zeros compressed by HDF5 itself, then its bytes written N / 16 times.
        h5::Handle one_space(H5Screate_simple(2, chunk, nullptr));
        h5::Handle one(H5Dcreate2(f, "one", H5T_NATIVE_UINT8, one_space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
        const std::vector<std::uint8_t> zeros(chunk_rows * F, 0);
        H5_CHECK(H5Dwrite(one, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()));
        const hsize_t origin[2] = {0, 0};
        hsize_t bytes = 0;
        H5_CHECK(H5Dget_chunk_storage_size(one, origin, &bytes));
        std::vector<char> raw(bytes);
        std::uint32_t mask = 0;
        H5_CHECK(H5Dread_chunk(one, H5P_DEFAULT, origin, &mask, raw.data()));
        for (const char* g : {"train", "test"}) {
            const std::uint64_t rows = std::string(g) == "train" ? N : chunk_rows;
            h5::Handle grp = h5::create_group(f, g);
            const hsize_t dims[2] = {rows, F};
            h5::Handle space(H5Screate_simple(2, dims, nullptr));
            h5::Handle ds(H5Dcreate2(grp, "images", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
            for (hsize_t r = 0; r < rows; r += chunk_rows) {
                const hsize_t at[2] = {r, 0};
                H5_CHECK(H5Dwrite_chunk(ds, H5P_DEFAULT, mask, at, bytes, raw.data()));
            }
            h5::write(grp, "labels", std::vector<std::int32_t>(rows, 0));
        }
        h5::set_attr(f, "classes", std::int64_t{2});
    }
    BOOST_TEST_MESSAGE("a 1 GiB split in a file of " << fs::file_size(p) << " bytes");
    auto be = make_backend("omp");
    LoaderOptions opt;
    opt.path = p;
    {
        const AddressSpaceLimit limit(std::uint64_t{64} << 20);
        expect_error([&] { Loader L(*be, opt); },
                     p +
                         ": /train/images (the whole split in memory; --streaming reads batches instead): cannot "
                         "allocate 1073741824 bytes (1.0 GiB) of host memory: out of memory");
    }
    // Without the limit the same file loads: the refusal above was the allocation, not the file.
    opt.split = Split::test;
    BOOST_CHECK_NO_THROW(Loader(*be, opt));
}
