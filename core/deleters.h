#pragma once

#include <memory>

namespace hawker {

/// Deleter that calls a C library's free function: `std::unique_ptr<sqlite3_stmt,
/// FnDeleter<sqlite3_finalize>>`.
template <auto Fn>
struct FnDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Fn(p);
  }
};

/// Deleter for C libraries whose free function takes a pointer to the pointer
/// (`av_packet_free(&pkt)`, `avcodec_free_context(&ctx)`).
template <auto Fn>
struct FnRefDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Fn(&p);
  }
};

template <typename T, auto Fn>
using CPtr = std::unique_ptr<T, FnDeleter<Fn>>;

}  // namespace hawker
