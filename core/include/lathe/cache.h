// On-disk caches (compiled kernels, code objects, search results): where they live, how
// entries are named, and how they are written so that concurrent processes never see half a file.
#pragma once
#include <string>

namespace lathe {

// LATHE_CACHE_DIR, else $XDG_CACHE_HOME/lathe, else ~/.cache/lathe, else a temporary folder.
std::string cache_root();
// <root>/<name>, created; throws lathe::Error naming the folder when it cannot be made.
std::string cache_dir(const std::string& name);
// 16 hex digits of a 64-bit FNV-1a hash: the name of an entry keyed by `text`.
std::string content_hash(const std::string& text);
// Writes under a name unique to this process and call, then renames over `path`.
void write_atomically(const std::string& path, const std::string& bytes);

}  // namespace lathe
