// OperandCopy<T>: a float tensor in the form the gemms read, for gemm operand type T (the
// model's compute precision, chosen once at the top: nn/step.hpp). fp32: the tensor itself, no
// copy and no storage. bf16: a copy of its own, rounded to nearest even when refreshed. The
// model's generic code calls the same four functions for both; the type decides what they do.
#pragma once

#include "backend/backend.hpp"
#include "core/buffer.hpp"

#include <cstddef>

namespace ompml {

template <class T>
class OperandCopy;

template <>
class OperandCopy<float> {
public:
    OperandCopy() = default;
    OperandCopy(const MemorySpace&, std::size_t) {}
    const float* from(Backend&, const float* x, std::size_t) { return x; } // refreshed and viewed
    const float* view(const float* x) const { return x; }                  // as of the last refresh
    void refresh(Backend&, const float*, std::size_t) {}
    bf16* copy() { return nullptr; } // nothing for an optimizer step to refresh
    static constexpr std::size_t bytes_per_element = 0;
};

template <>
class OperandCopy<bf16> {
public:
    OperandCopy() = default;
    OperandCopy(const MemorySpace& mem, std::size_t n) : buf_(mem, n) {}
    const bf16* from(Backend& be, const float* x, std::size_t n)
    {
        refresh(be, x, n);
        return buf_.data();
    }
    const bf16* view(const float*) const { return buf_.data(); }
    void refresh(Backend& be, const float* x, std::size_t n) { be.convert(n, x, buf_.data()); }
    bf16* copy() { return buf_.data(); }
    static constexpr std::size_t bytes_per_element = sizeof(bf16);

private:
    DeviceBuffer<bf16> buf_;
};

} // namespace ompml
