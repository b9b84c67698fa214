// DeviceBuffer<T>: RAII over one allocation in a MemorySpace, with explicit host<->device
// copies. Move-only; the data pointer is a device pointer (pass it to kernels, never deref it
// on the host unless the space is host memory).
#pragma once

#include "core/check.hpp"
#include "core/memory.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace ompml {

template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(const MemorySpace& mem, std::size_t n)
        : mem_(&mem), n_(n), p_(static_cast<T*>(mem.allocate(n * sizeof(T))))
    {
    }
    DeviceBuffer(const MemorySpace& mem, const std::vector<T>& host) : DeviceBuffer(mem, host.size())
    {
        upload(host.data(), host.size());
    }
    ~DeviceBuffer() { reset(); }

    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept
    {
        if (this != &o) {
            reset();
            swap(o);
        }
        return *this;
    }

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }
    std::size_t bytes() const { return n_ * sizeof(T); }
    const MemorySpace& memory() const { return *mem_; }

    // Copies n elements from host memory into this buffer at element offset.
    void upload(const T* host, std::size_t n, std::size_t offset = 0)
    {
        require(offset + n <= n_,
                "DeviceBuffer::upload: " + std::to_string(offset + n) + " elements exceed the buffer's " +
                    std::to_string(n_));
        mem_->to_device(p_ + offset, host, n * sizeof(T));
    }
    void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }

    void download(T* host, std::size_t n, std::size_t offset = 0) const
    {
        require(offset + n <= n_,
                "DeviceBuffer::download: " + std::to_string(offset + n) + " elements exceed the buffer's " +
                    std::to_string(n_));
        mem_->to_host(host, p_ + offset, n * sizeof(T));
    }
    std::vector<T> to_vector() const
    {
        std::vector<T> v(n_);
        download(v.data(), n_);
        return v;
    }

private:
    void reset()
    {
        if (p_ != nullptr) mem_->deallocate(p_);
        p_ = nullptr;
        n_ = 0;
    }
    void swap(DeviceBuffer& o) noexcept
    {
        std::swap(mem_, o.mem_);
        std::swap(n_, o.n_);
        std::swap(p_, o.p_);
    }

    const MemorySpace* mem_ = nullptr;
    std::size_t n_ = 0;
    T* p_ = nullptr;
};

} // namespace ompml
