#!/usr/bin/env bash
# ctest msrtrace_deb_package: builds the Debian package of a built tree with CPack and checks that
# it installs on Debian 12.
#   1. cpack -G DEB -> msrtrace_<version>_<arch>.deb; dpkg-deb --info/--contents: the control
#      file names its Depends, and the package holds the tool, the libraries, the C and C++
#      headers, the CMake package, msrtrace.pc and the fuzz support;
#   2. apt-get install --simulate ./msrtrace_*.deb: apt accepts the package and resolves every
#      dependency from the Debian 12 archive the machine uses (nothing is installed);
#   3. dpkg-deb -x into a scratch root: the unpacked /usr is used as the install prefix of the
#      find_package and pkg-config consumers (scripts/install_consumer_test.sh), which proves
#      the files work at their packaged paths (the package is relocatable: its CMake and
#      pkg-config files locate the prefix from their own directory).
#   4. Only when MSRTRACE_DEB_SYSTEM_INSTALL=1 and running as root (a disposable CI machine):
#      apt-get install ./msrtrace_*.deb for real, the consumers against /usr, then apt-get
#      remove. Off by default: it changes the machine outside the build tree.
#
#   deb_package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/msrtrace_deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log") ||
  { cat "$work/cpack.log"; exit 1; }
debs=("$work"/out/msrtrace_*.deb)
[[ -f ${debs[0]} ]] || { echo "deb_package_test: cpack wrote no msrtrace_*.deb" >&2; exit 1; }
deb=${debs[0]}
echo "deb_package_test: built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

info=$(dpkg-deb --info "$deb")
for field in "Package: msrtrace" "Depends: .*libabsl-dev" "Depends: .*libprotobuf-dev" \
             "Depends: .*zlib1g-dev"; do
  grep -q "$field" <<<"$info" || { echo "deb_package_test: control lacks '$field'" >&2; exit 1; }
done
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/msrtrace ./usr/lib/libmsrtrace_capi.a ./usr/lib/libmsrtrace_core.a \
            ./usr/include/msrtrace/msrtrace.h ./usr/include/msrtrace/harness/core/controller.h \
            ./usr/include/msrtrace/handlers/handler_set.h \
            ./usr/lib/cmake/msrtrace/msrtraceConfig.cmake \
            ./usr/lib/cmake/msrtrace/MsrtraceFuzz.cmake ./usr/lib/pkgconfig/msrtrace.pc \
            ./usr/share/msrtrace/fuzz/exit_sequence_fuzzer.cc \
            ./usr/share/msrtrace/corpus/golden/faults.trace; do
  grep -q " $path\$" <<<"$contents" || { echo "deb_package_test: package lacks $path" >&2; exit 1; }
done
# Private headers stay out of the package.
if grep -q "/usr/include/msrtrace/harness/trace/trace_proto.h\$" <<<"$contents"; then
  echo "deb_package_test: a private header is packaged" >&2
  exit 1
fi

apt-get install --simulate --no-install-recommends "$deb" >"$work/apt.log" 2>&1 ||
  { cat "$work/apt.log"; exit 1; }
grep -q "msrtrace" "$work/apt.log" || { cat "$work/apt.log"; exit 1; }
echo "deb_package_test: apt-get install --simulate resolved the package"

dpkg-deb -x "$deb" "$work/root"
MSRTRACE_PREFIX=$work/root/usr bash "$src/scripts/install_consumer_test.sh" "$build" "$src"

if [[ ${MSRTRACE_DEB_SYSTEM_INSTALL:-0} == 1 && $(id -u) == 0 ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb"
  status=0
  MSRTRACE_PREFIX=/usr bash "$src/scripts/install_consumer_test.sh" "$build" "$src" || status=$?
  DEBIAN_FRONTEND=noninteractive apt-get remove -y msrtrace
  exit "$status"
fi
