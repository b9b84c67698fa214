// Staged<G> (see staged_sum.hpp): an MPI transport on a host mirror, bucket copies both ways.
#include "parallel/staged_sum.hpp"

#include "core/check.hpp"
#include "core/timer.hpp"

#include <cstdlib>
#include <exception>
#include <utility>

namespace ompml {
namespace {

constexpr std::size_t kPage = 4096;

} // namespace

template <class G>
Staged<G>::Staged(const MemorySpace& mem, G* grad, std::size_t n, const GradSumOptions& opt, std::string inner_name,
                  const MakeInner& make_inner)
    : GradientSum<G>(n), mem_(mem), grad_(grad), mirror_(nullptr), pinned_(static_cast<bool>(opt.pin_host)),
      inner_name_(std::move(inner_name)), unpin_(opt.unpin_host)
{
    if (n > 0) {
        const std::size_t bytes = (n * sizeof(G) + kPage - 1) / kPage * kPage;
        void* p = std::aligned_alloc(kPage, bytes);
        require(p != nullptr, "gradient sum: staging allocation of " + std::to_string(bytes) + " bytes failed");
        if (opt.pin_host) opt.pin_host(p, bytes);
        mirror_ = static_cast<G*>(p);
    }
    inner_ = make_inner(mirror_, [this](std::size_t off, std::size_t m) { copy_back(off, m); });
}

template <class G>
Staged<G>::~Staged()
{
    inner_.reset();
    // Unwinding from an error on this rank: the inner transport may have left requests in flight
    // on the mirror (it never waits then), so leave the memory to MPI; the job is ending.
    if (mirror_ == nullptr || std::uncaught_exceptions() > 0) return;
    if (unpin_) unpin_(mirror_);
    std::free(mirror_);
}

template <class G>
std::string Staged<G>::describe() const
{
    return inner_name_ + ", staged through " + (pinned_ ? "pinned" : "pageable") + " host memory" + this->dtype_text;
}

template <class G>
void Staged<G>::ready(std::size_t off, std::size_t n)
{
    if (!this->mark(off, n)) return; // checked here too: nothing is copied from outside the view
    const Stopwatch copy;
    mem_.to_host(mirror_ + off, grad_ + off, n * sizeof(G));
    this->cur_.copy_s += copy.seconds();
    inner_->ready(off, n);
}

template <class G>
void Staged<G>::copy_back(std::size_t off, std::size_t n)
{
    const Stopwatch copy;
    mem_.to_device(grad_ + off, mirror_ + off, n * sizeof(G));
    this->cur_.copy_s += copy.seconds();
}

template <class G>
void Staged<G>::finish()
{
    // The inner transport holds the same marks, so it throws (after its wait) when end_step()
    // below does: its step's statistics are taken either way (its span and counter are the step's).
    std::exception_ptr inner_error;
    try {
        inner_->finish();
    } catch (const Error&) {
        inner_error = std::current_exception();
    }
    const double copy_s = this->cur_.copy_s;
    this->cur_ = inner_->last_step();
    this->cur_.copy_s += copy_s;
    this->end_step();
    if (inner_error) std::rethrow_exception(inner_error);
}

template class Staged<float>;
template class Staged<bf16>;

} // namespace ompml
