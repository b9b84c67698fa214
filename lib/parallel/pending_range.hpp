// The bucket bookkeeping both MPI transports share (mpi_sum.hpp, mpi_exchange.hpp): ranges
// marked ready that are adjacent (the usual reverse layer order) collect into one pending range;
// once it holds the bucket size it goes out as one bucket, so buckets are whole layers and never
// one call per tensor. A range not adjacent to the pending one closes it first.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>

namespace ompml {

// A bucket [off, off + n) of the sum is final in the buffer MPI works on (a staging mirror
// copies it back to the device: staged_sum.hpp).
using BucketDone = std::function<void(std::size_t off, std::size_t n)>;

class PendingRange {
public:
    static constexpr std::size_t kMaxCount = std::size_t{1} << 30; // MPI counts are int

    // bucket_mb in FLOAT bytes whatever the element type (as --bucket-mb always counted);
    // <= 0: no bucket closes before drain().
    explicit PendingRange(double bucket_mb)
        : bucket_elems_(bucket_mb > 0
                            ? std::max<std::size_t>(1, static_cast<std::size_t>(bucket_mb * 1048576.0 / sizeof(float)))
                            : std::numeric_limits<std::size_t>::max())
    {
    }

    // Adds the ready range [off, off + n), n > 0; launch(off, n) for every bucket that closes
    // (in pieces of at most kMaxCount elements).
    template <class Launch>
    void add(std::size_t off, std::size_t n, Launch&& launch)
    {
        if (hi_ == lo_) {
            lo_ = off;
            hi_ = off + n;
        } else if (off + n == lo_) {
            lo_ = off;
        } else if (off == hi_) {
            hi_ += n;
        } else {
            drain(launch);
            lo_ = off;
            hi_ = off + n;
        }
        if (hi_ - lo_ >= bucket_elems_) drain(launch);
    }

    // launch(off, n) for what is pending (in pieces of at most kMaxCount), which is then empty.
    template <class Launch>
    void drain(Launch&& launch)
    {
        for (std::size_t off = lo_; off < hi_; off += kMaxCount) launch(off, std::min(kMaxCount, hi_ - off));
        lo_ = hi_ = 0;
    }

private:
    std::size_t bucket_elems_;
    std::size_t lo_ = 0, hi_ = 0; // the pending (ready, not yet sent) range
};

} // namespace ompml
