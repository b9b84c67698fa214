// The number format of a run's arithmetic operands (--precision) and of the gradients the
// ranks exchange (--grad-dtype): fp32 everywhere, or bf16 operands (core/bf16.hpp) with float
// accumulation. Master weights, optimizer state, loss and softmax are fp32 in both.
#pragma once

#include "core/enum_names.hpp"

#include <utility>

namespace ompml {

enum class Precision { fp32, bf16 };

template <>
struct EnumNames<Precision> {
    static constexpr const char* what = "precision";
    static constexpr std::pair<Precision, const char*> names[] = {{Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}};
};

} // namespace ompml
