// ompml-data: make and check dataset files (schema: data/README.md).
//   ompml-data import-idx DIR -o FILE.h5     MNIST-format IDX files (gzip or raw) -> dataset
//   ompml-data synth --train N --test M --features F --classes C --seed S [--dtype uint8|float32] -o FILE.h5
//   ompml-data inspect FILE.h5               schema check, sizes, dtypes, label histograms, attributes
// -o never replaces a file that is not a dataset ompml-data wrote (a checkpoint, a user's text,
// a dataset made elsewhere) unless --force is given, and never a directory (io/output_target.hpp).
// Errors: one line "ompml-data: error: ..." on stderr and exit code 1 (usage errors: exit code 2).
#include "app/cli.hpp"
#include "core/check.hpp"
#include "core/timer.hpp"
#include "io/dataset.hpp"
#include "io/h5.hpp"
#include "io/idx.hpp"
#include "io/output_target.hpp"
#include "io/synth.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

using namespace ompml;

namespace {

std::string dims_text(std::uint64_t n, const std::vector<std::uint64_t>& dims)
{
    std::string s = "(" + std::to_string(n);
    for (auto d : dims) s += ", " + std::to_string(d);
    return s + ")";
}

std::string size_text(std::uintmax_t bytes)
{
    char buf[64];
    if (bytes < (1u << 20))
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
    else
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

void print_inspect(const std::string& path)
{
    const DatasetInfo d = inspect_dataset(path);
    std::cout << path << ": valid ompml dataset, " << size_text(std::filesystem::file_size(path)) << "\n";
    std::cout << "  classes " << d.classes << ", features " << d.features << "\n";
    for (const Split s : {Split::train, Split::test, Split::val}) {
        if (s == Split::val && !d.has_val) continue;
        const SplitInfo& si = d.split(s);
        const std::uint64_t bytes = si.samples * d.features * (si.image_dtype == h5::Dtype::u8 ? 1 : 4);
        std::cout << "  /" << enum_name(s) << ": " << si.samples << " samples\n"
                  << "    images " << dims_text(si.samples, si.image_dims) << " " << h5::dtype_name(si.image_dtype)
                  << " (" << size_text(bytes) << " uncompressed)\n"
                  << "    labels (" << si.samples << ") " << si.label_type << "\n"
                  << "    label histogram:";
        for (std::size_t c = 0; c < si.label_counts.size(); ++c) {
            if (d.classes > 32 && si.label_counts[c] == 0) continue; // long lists: only classes present
            std::cout << " " << c << ":" << si.label_counts[c];
        }
        std::cout << "\n";
    }
    const h5::Handle file = h5::open_read(path);
    std::cout << "  attributes:\n";
    for (const std::string& name : h5::attr_names(file))
        std::cout << "    " << name << " = " << h5::attr_text(file, name) << "\n";
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ompml-data: make and check ompml dataset files (HDF5; schema in data/README.md)"};
    app.require_subcommand(1);

    std::string idx_dir, idx_out;
    bool force = false;
    const char* force_help = "replace -o FILE even when it is not a dataset ompml-data wrote (never a directory)";
    auto* imp = app.add_subcommand("import-idx", "import MNIST-format IDX files (gzip or raw) from DIR");
    imp->add_option("DIR", idx_dir, "directory with train-images-idx3-ubyte[.gz] etc.")->required();
    imp->add_option("-o,--output", idx_out, "dataset file to write")->required();
    imp->add_flag("--force", force, force_help);

    SynthOptions so;
    std::string synth_out, dtype = "uint8";
    auto* syn = app.add_subcommand("synth", "write a synthetic Gaussian-mixture dataset (pure function of the seed)");
    // Ranges here are the flags' types'; what a dataset can hold is checked by write_synth.
    cli::add_int(syn, "--train", so.train, "training samples", 1)->required();
    cli::add_int(syn, "--test", so.test, "test samples", 1)->required();
    cli::add_int(syn, "--features", so.features, "features per sample", 1)->required();
    cli::add_int(syn, "--classes", so.classes, "number of classes", 1, kSynthMaxClasses)->required();
    cli::add_int(syn, "--seed", so.seed, "random seed")->required();
    cli::add_int(syn, "--modes", so.modes, "Gaussian clusters per class", 1)->capture_default_str();
    syn->add_option("--dtype", dtype, "stored image type")
        ->capture_default_str()
        ->check(CLI::IsMember({"uint8", "float32"}));
    syn->add_option("-o,--output", synth_out, "dataset file to write")->required();
    syn->add_flag("--force", force, force_help);

    std::string inspect_path;
    auto* ins = app.add_subcommand("inspect", "check FILE against the schema and describe it");
    ins->add_option("FILE", inspect_path, "dataset file")->required();

    if (const auto rc = cli::parse(app, argc, argv, "ompml-data")) return *rc;

    try {
        Stopwatch sw;
        if (*imp || *syn) // before anything is read or generated
            check_output(*imp ? idx_out : synth_out, FileKind::dataset, "-o",
                         "choose another -o path, move the file away, or give --force to replace it", force);
        if (*imp) {
            const ImportReport r = import_idx(idx_dir, idx_out);
            std::cout << "wrote " << idx_out << ": " << r.train << " train + " << r.test << " test samples, "
                      << size_text(std::filesystem::file_size(idx_out)) << ", " << sw.seconds() << " s\n";
        } else if (*syn) {
            so.dtype = dtype == "float32" ? h5::Dtype::f32 : h5::Dtype::u8;
            write_synth(so, synth_out);
            std::cout << "wrote " << synth_out << ": " << so.train << " train + " << so.test << " test samples, "
                      << so.features << " features, " << so.classes << " classes, "
                      << size_text(std::filesystem::file_size(synth_out)) << ", " << sw.seconds() << " s\n";
        } else if (*ins) {
            print_inspect(inspect_path);
        }
    } catch (const std::exception& e) {
        std::cerr << "ompml-data: error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
