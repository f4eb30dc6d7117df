#!/usr/bin/env bash
# Coverage-guided fuzzing of every tests/fuzz/fuzz_*.c with libFuzzer
# (`make fuzz`). The library is built with clang into build-fuzz/ with
# ASan, UBSan and libFuzzer's coverage instrumentation, each target is
# linked against it, and each runs for FUZZ_SECONDS (default 60) over a
# scratch copy of its corpus (tests/fuzz/corpus/<name>/), so the checked-in
# corpus only changes when someone copies a finding into it on purpose.
#
#   FUZZ_SECONDS=300 bash tests/fuzz/run-libfuzzer.sh            # all targets
#   bash tests/fuzz/run-libfuzzer.sh fuzz_money fuzz_apikey       # some
#   FUZZ_ARGS="-jobs=2 -workers=2" bash tests/fuzz/run-libfuzzer.sh
#
# Crashes, leaks and timeouts are written to build-fuzz/artifacts/ and make
# the script exit non-zero; replay one with build-fuzz/fuzz/<target> <file>.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ARGS=${FUZZ_ARGS:-}
CLANG=${CLANG:-clang}
OUT=build-fuzz
PKGS="$(make -s --no-print-directory print-pkgs)" # one list: the Makefile's
SAN=address,undefined

command -v "$CLANG" >/dev/null || { echo "run-libfuzzer: $CLANG not found" >&2; exit 2; }

# The library, instrumented for coverage (fuzzer-no-link) as well as checked.
make --no-print-directory BUILD=$OUT CC="$CLANG" OPT=-O1 \
	SANITIZE=$SAN,fuzzer-no-link $OUT/libnexra.a

CFLAGS="-std=c17 -D_GNU_SOURCE -g -O1 -Isrc -I$OUT/gen $(pkg-config --cflags $PKGS)
	-fsanitize=fuzzer,$SAN -fno-omit-frame-pointer -fno-sanitize-recover=all"
LIBS="$(pkg-config --libs $PKGS) -lstemmer -lpthread -lm"

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in tests/fuzz/fuzz_*.c; do
		targets+=("$(basename "$f" .c)")
	done
fi

mkdir -p $OUT/fuzz $OUT/artifacts $OUT/corpus
failed=()
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	# shellcheck disable=SC2086
	"$CLANG" $CFLAGS -o $OUT/fuzz/$t tests/fuzz/$t.c $OUT/libnexra.a $LIBS
	work=$OUT/corpus/$name
	rm -rf "$work"
	mkdir -p "$work"
	cp -r tests/fuzz/corpus/$name/. "$work/"
	dict=()
	if [ -f tests/fuzz/corpus/$name.dict ]; then
		dict=(-dict=tests/fuzz/corpus/$name.dict)
	fi
	echo "== $t: ${FUZZ_SECONDS}s over $(ls "$work" | wc -l) seeds"
	# shellcheck disable=SC2086
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		$OUT/fuzz/$t -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=$OUT/artifacts/$t- "${dict[@]}" \
		$FUZZ_ARGS "$work" >$OUT/fuzz/$t.log 2>&1; then
		grep -E "^stat::(number_of_executed_units|new_units_added)|^#[0-9]+.*DONE" \
			$OUT/fuzz/$t.log | tr '\n' ' '
		echo "(corpus now $(ls "$work" | wc -l) inputs)"
	else
		echo "!! $t failed; log: $OUT/fuzz/$t.log"
		grep -E "ERROR|SUMMARY|Test unit written|runtime error" $OUT/fuzz/$t.log | head -20
		failed+=("$t")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "run-libfuzzer: findings in ${failed[*]} (artifacts in $OUT/artifacts/)"
	exit 1
fi
echo "run-libfuzzer: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, no findings"
