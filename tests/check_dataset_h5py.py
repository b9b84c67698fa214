#!/usr/bin/python3
"""Independent check of a dataset file with h5py (run with Debian's /usr/bin/python3).

usage: check_dataset_h5py.py FILE TRAIN TEST FEATURES CLASSES DTYPE

Checks the schema of data/README.md from outside ompml: groups and datasets, shapes, dtypes,
label range, the attributes (classes an integer, source and created_by str), and that the
data is not degenerate (every class present, images vary). Exits non-zero on any mismatch.
"""
import sys

import h5py
import numpy as np


def main():
    path, n_train, n_test, features, classes, dtype = sys.argv[1:7]
    n = {"train": int(n_train), "test": int(n_test)}
    features, classes = int(features), int(classes)
    errors = []

    def check(cond, msg):
        if not cond:
            errors.append(msg)

    with h5py.File(path, "r") as f:
        check(int(f.attrs["classes"]) == classes, f"classes attr {f.attrs['classes']} != {classes}")
        for name in ("source", "created_by"):
            check(isinstance(f.attrs[name], str), f"attr {name} is {type(f.attrs[name])}, not str")
        for split in ("train", "test"):
            x = f[f"{split}/images"][...]
            y = f[f"{split}/labels"][...]
            check(x.shape == (n[split], features), f"{split}/images shape {x.shape}")
            check(x.dtype == np.dtype(dtype), f"{split}/images dtype {x.dtype} != {dtype}")
            check(y.shape == (n[split],), f"{split}/labels shape {y.shape}")
            check(y.dtype == np.int32, f"{split}/labels dtype {y.dtype}")
            check(y.min() >= 0 and y.max() < classes, f"{split}/labels out of range")
            check(len(np.unique(y)) == classes, f"{split}: not every class present")
            check(float(x.std()) > 0, f"{split}/images constant")
            if dtype == "float32":
                check(x.min() >= 0 and x.max() <= 1, f"{split}/images outside [0, 1]")
            # Class-dependent data: the class means differ by more than the noise of a mean.
            means = np.stack([x[y == c].astype(np.float64).mean(axis=0) for c in range(classes)])
            check(np.abs(means[0] - means[1]).max() > 0.1 * x.astype(np.float64).std(),
                  f"{split}: class means do not differ")
    if errors:
        for e in errors:
            print(f"{path}: {e}", file=sys.stderr)
        return 1
    print(f"{path}: h5py check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
