# Sourced by the scripts/build-native*.sh builders after they define `why MESSAGE` (prints why the addon is
# not built and exits 0). Sets `cc` (the C compiler) and `inc` (the directory with node_api.h).
command -v node >/dev/null 2>&1 || why "node not found"
cc="${CC:-cc}"
command -v "$cc" >/dev/null 2>&1 || why "no C compiler ($cc); apt-get install gcc"
prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
inc=""
for d in "$prefix/include/node" /usr/include/node /usr/local/include/node; do
  [ -f "$d/node_api.h" ] && { inc="$d"; break; }
done
[ -n "$inc" ] || why "Node headers (node_api.h) not found; apt-get install libnode-dev or use a Node with include/node"
