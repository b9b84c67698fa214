// ompml-predict: class probabilities and predictions of a trained model on images that need no
// labels, into an HDF5 file h5py reads (lib/app/predict.hpp has the schema and the steps).
//
//   ompml-predict --checkpoint run.h5 --data images.h5 [--split test] -o predictions.h5
//   ompml-predict --checkpoint run.h5 --data t10k-images-idx3-ubyte.gz -o predictions.h5
#include "app/predict.hpp"

#include "core/provenance.hpp"

using namespace ompml;

int main(int argc, char** argv)
{
    MpiSession mpi(&argc, &argv); // outside: see run_on_every_rank
    return run_on_every_rank(mpi, "ompml-predict", [&] {
        PredictOptions opt;
        if (const auto rc = parse_predict_flags(argc, argv, mpi.root(), opt)) return *rc;
        const Predictions p = predict(mpi, opt);
        write_predictions(opt.output, p, provenance("ompml-predict", mpi.processor(), p.backend + " on " + p.device));
        print_predictions(opt.output, p);
        return 0;
    });
}
