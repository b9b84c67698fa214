// The bookkeeping every gradient transport shares (gradient_sum.hpp): statistics and marks.
#include "nn/gradient_sum.hpp"

#include "core/check.hpp"
#include "core/trace.hpp"

#include <string>

namespace ompml {

void GradSyncStats::add(const GradSyncStats& o)
{
    steps += o.steps;
    buckets += o.buckets;
    bytes += o.bytes;
    mpi_s += o.mpi_s;
    wait_s += o.wait_s;
    copy_s += o.copy_s;
    node_s += o.node_s;
    inter_s += o.inter_s;
    share_s += o.share_s;
}

bool GradSumSteps::mark(std::size_t off, std::size_t n)
{
    require(off <= n_ && n <= n_ - off,
            "GradientSum::ready: range [" + std::to_string(off) + ", " + std::to_string(off + n) +
                ") exceeds the gradient's " + std::to_string(n_) + " elements");
    if (n == 0) return false;
    for (const auto& [lo, hi] : marked_)
        require(off >= hi || off + n <= lo,
                "GradientSum::ready: range [" + std::to_string(off) + ", " + std::to_string(off + n) + ") overlaps [" +
                    std::to_string(lo) + ", " + std::to_string(hi) + ") marked earlier this step");
    marked_.emplace_back(off, off + n);
    marked_total_ += n;
    return true;
}

void GradSumSteps::finish_step(std::int64_t span_bytes, const std::function<void()>& sum)
{
    {
        // The rest of the sum and the wait for the buckets in flight: what backward did not hide.
        const trace::Span span("grad sum", trace::host, -1, span_bytes);
        const double mpi_before = cur_.mpi_s;
        sum();
        cur_.wait_s += cur_.mpi_s - mpi_before;
    }
    trace::counter("grad bytes", static_cast<double>(cur_.bytes));
    end_step();
}

void GradSumSteps::end_step()
{
    cur_.steps = 1;
    last_ = cur_;
    total_.add(cur_);
    cur_ = GradSyncStats{};
    marked_.clear();
    const std::size_t marked = marked_total_;
    marked_total_ = 0;
    require(marked == n_,
            "GradientSum::finish: only " + std::to_string(marked) + " of " + std::to_string(n_) +
                " gradient elements were marked ready this step");
}

} // namespace ompml
