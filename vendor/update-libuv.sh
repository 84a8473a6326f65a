#!/bin/sh
# Re-create vendor/libuv/ from a libuv release tarball, unmodified.
#
#   vendor/update-libuv.sh TARBALL SHA256 [ORIGIN]
#
# The tarball's checksum is verified first; then the parts of the release that the build
# uses (include/, src/, CMakeLists.txt for the per-platform source lists) and its licence
# files are copied as they are, and vendor/libuv/VENDORED.md records version, origin and
# checksum.  An upgrade is this one command followed by a rebuild and the test suite; if the
# release changed its source lists, tests/uv/test_build_sources.py says which.
set -eu
tarball=$1
want=$2
origin=${3:-"upstream release tarball"}
here=$(cd "$(dirname "$0")" && pwd)
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
    echo "checksum mismatch: $tarball is $got, expected $want" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$tarball" -C "$tmp"
top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
version=$(sed -n 's/^#define UV_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' \
    "$top/include/uv/version.h" | paste -sd. -)
rm -rf "$here/libuv"
mkdir -p "$here/libuv"
cp -R "$top/include" "$top/src" "$here/libuv/"
for f in LICENSE LICENSE-extra AUTHORS CMakeLists.txt; do
    cp "$top/$f" "$here/libuv/"
done
cat > "$here/libuv/VENDORED.md" <<EOT
# Vendored libuv

- version: $version
- origin: $origin ($(basename "$tarball"))
- sha256: $want
- contents: \`include/\`, \`src/\`, \`CMakeLists.txt\`, \`LICENSE\`, \`LICENSE-extra\`, \`AUTHORS\`,
  copied unmodified from the release; nothing else of the release is kept.
- re-create or upgrade: \`vendor/update-libuv.sh TARBALL SHA256 [ORIGIN]\`

libuv is distributed under the MIT licence (LICENSE); some files carry the notices listed in
LICENSE-extra.
EOT
echo "vendored libuv $version into $here/libuv"
