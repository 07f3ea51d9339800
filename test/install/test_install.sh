#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# meson install into a scratch DESTDIR, then what a user does with it: the files are where they
# belong, the shared library exports the public API alone, and consumer.c builds through
# `pkg-config --cflags --libs ringfence` (shared) and `--static` (static library) and runs. TAP.
#   test_install.sh MESON BUILDDIR SRCDIR CONSUMER_C VERSION SANITIZE BINDIR LIBDIR INCLUDEDIR DATADIR
#                   with-proto|no-proto
# The directories are the configured absolute ones; CC is the build's compiler command.
set -u
meson=$1 build=$2 src=$3 consumer=$4 version=$5 sanitize=$6 bindir=$7 libdir=$8 includedir=$9 datadir=${10} proto=${11}
cc=${CC:-cc}

n=0 failed=0
ok() { # ok PASS NAME
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
comment() { sed 's/^/# /'; }
run() { # run NAME COMMAND...: ok if the command succeeds; its output as comments
	local name=$1 out status
	shift
	out=$("$@" 2>&1)
	status=$?
	[ -n "$out" ] && printf '%s\n' "$out" | comment
	ok $status "$name"
	return $status
}

command -v pkg-config >/dev/null || { echo "1..0 # SKIP pkg-config is not installed (Debian: pkgconf)"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringfence-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
echo "# DESTDIR $dest"

if ! run "meson install --destdir into a scratch directory" \
	"$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet; then
	echo "1..$n"
	exit 1
fi

for f in "$bindir/ringfence" "$includedir/ringfence.h" "$libdir/libringfence.so.$version" \
         "$libdir/libringfence.so.0" "$libdir/libringfence.so" "$libdir/libringfence.a" \
         "$libdir/pkgconfig/ringfence.pc"; do
	[ -e "$dest$f" ]
	ok $? "installed $f"
done
# The interface file, once proto/ is part of the build (its meson.build installs it).
if [ "$proto" = with-proto ]; then
	cmp -s "$src/proto/ringfence.proto" "$dest$datadir/ringfence/ringfence.proto"
	ok $? "installed $datadir/ringfence/ringfence.proto"
else
	echo "# proto/ is not part of the build yet: the .proto is not checked"
fi
[ "$(readlink "$dest$libdir/libringfence.so.0")" = "libringfence.so.$version" ]
ok $? "libringfence.so.0 links to libringfence.so.$version"

so=$dest$libdir/libringfence.so.$version
soname=$(readelf -d "$so" 2>&1 | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libringfence.so.0 ]
ok $? "SONAME is libringfence.so.0 (got '$soname')"

# Every exported symbol is an rf_ function of the installed header; RINGFENCE_0 is the version node.
declared=$(grep -o 'rf_[a-z0-9_]*(' "$dest$includedir/ringfence.h" | tr -d '(' | sort -u)
stray=$(nm -D --defined-only "$so" | awk '{ sub(/@.*/, "", $3); print $3 }' | grep -vx RINGFENCE_0 |
	sort -u | comm -23 - <(printf '%s\n' "$declared"))
[ -n "$declared" ] && [ -z "$stray" ]
ok $? "the shared library exports only the header's rf_* functions"
# shellcheck disable=SC2086  # one line per stray symbol
[ -n "$stray" ] && printf 'exported but not in ringfence.h: %s\n' $stray | comment

# pkg-config as a user runs it, pointed into the DESTDIR: PKG_CONFIG_PATH finds ringfence.pc and
# the sysroot puts its -I/-L under the DESTDIR (system packages keep being found by the toolchain).
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_SYSROOT_DIR=$dest
got=$(pkg-config --modversion ringfence 2>&1)
[ "$got" = "$version" ]
ok $? "pkg-config --modversion ringfence is $version (got '$got')"
flags=$(pkg-config --cflags --libs ringfence) || flags=
static_flags=$(pkg-config --static --cflags --libs ringfence) || static_flags=
echo "# pkg-config --cflags --libs ringfence: $flags"
echo "# pkg-config --static --cflags --libs ringfence: $static_flags"

# A library built with sanitizers needs their runtime in the program: build it with the same flags.
san=()
[ "$sanitize" != none ] && [ -n "$sanitize" ] && san=("-fsanitize=$sanitize")
# shellcheck disable=SC2086  # the compiler command and pkg-config's flags are word lists
if run "consumer.c builds against the shared library" \
	$cc "${san[@]}" -Wall -Wextra -Werror "$consumer" -o "$tmp/consumer-shared" $flags; then
	LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/consumer-shared" | grep -q "libringfence.so.0 => $dest$libdir/"
	ok $? "it loads libringfence.so.0 from the DESTDIR"
	run "consumer (shared) runs" env LD_LIBRARY_PATH="$dest$libdir" "$tmp/consumer-shared"
fi
# -Bstatic around pkg-config's libraries: libringfence.a (and its private libraries) go into the
# program, which stays dynamic for libc (and the sanitizer runtime, which cannot be static). The
# whole archive, not only the members consumer.c calls: every member's libraries must be in the .pc.
static_libs=$(pkg-config --static --libs ringfence | sed 's/\(^\| \)-lringfence\( \|$\)/ -Wl,--whole-archive -lringfence -Wl,--no-whole-archive /')
# shellcheck disable=SC2086,SC2046
if run "consumer.c builds against the whole static library (pkg-config --static)" \
	$cc "${san[@]}" -Wall -Wextra -Werror "$consumer" -o "$tmp/consumer-static" \
	$(pkg-config --static --cflags ringfence) -Wl,-Bstatic $static_libs -Wl,-Bdynamic; then
	! readelf -d "$tmp/consumer-static" | grep -q 'NEEDED.*libringfence'
	ok $? "it does not need libringfence.so"
	run "consumer (static) runs" "$tmp/consumer-static"
fi

echo "1..$n"
[ "$failed" = 0 ]
