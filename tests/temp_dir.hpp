// A fresh temporary directory per test case, removed afterwards (also when a test took its
// permissions away): TempDir t("io"); std::string path = t / "d.h5";
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace ompml::test {

struct TempDir {
    std::filesystem::path dir;
    explicit TempDir(const std::string& what = "test")
    {
        static int counter = 0;
        dir = std::filesystem::temp_directory_path() /
            ("ompml_" + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(dir);
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(dir, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

} // namespace ompml::test
