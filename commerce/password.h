#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hawker::commerce {

/// scrypt cost parameters, stored with each hash so they can be raised later without
/// invalidating old passwords.
struct ScryptParams {
  int log2_n = 15;  ///< N = 2^15: about 32 MiB and 100 ms per hash
  int r = 8;
  int p = 1;
};

/// Hashes a password with scrypt and a fresh 16-byte salt:
/// "scrypt$ln=15,r=8,p=1$<salt base64>$<hash base64>". CPU- and memory-heavy: never on the loop.
Result<std::string> hash_password(std::string_view password, ScryptParams params = {});

/// Whether `password` matches an encoded hash made by hash_password (compared in constant time).
/// A malformed encoding never matches.
bool verify_password(std::string_view password, std::string_view encoded);

}  // namespace hawker::commerce
