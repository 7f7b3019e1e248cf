#!/usr/bin/env bash
# Fuzz smoke test: runs every cargo-fuzz target for ${FUZZ_SECONDS:-20} seconds, starting
# from the seed corpus in fuzz/corpus/<target>. The fuzzer writes new inputs into a
# temporary copy only, so the seed corpus in the repository never grows.
#
# Exits non-zero when a target fails to build or crashes (libFuzzer's reproducer lands in
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run <target> <file>`).
# When cargo-fuzz is missing and cannot be installed: fails under CI (CI=true) on Linux
# x86_64, where it must work; elsewhere exits 0 with a notice.
#
# Toolchain: nightly when rustup has it; otherwise the stable toolchain with
# RUSTC_BOOTSTRAP=1, which accepts the -Z sanitizer flags cargo-fuzz passes (stable's
# rust-std ships the sanitizer runtimes). CI machines have only stable.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-20}
# A fixed seed by default, so that a CI run explores the same inputs every time (a smoke
# test, not a search); set FUZZ_SEED=0 for a random one when fuzzing for real.
seed=${FUZZ_SEED:-1}
notice() { printf 'notice: fuzz smoke: %s\n' "$*"; }
# No fuzzing possible: an error where CI runs on Linux x86_64, a notice elsewhere.
cannot_fuzz() {
    if [ "${CI:-}" = true ] && [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ]; then
        echo "error: fuzz smoke: $* (CI=true on Linux x86_64: the fuzzer must run)" >&2
        exit 1
    fi
    notice "SKIPPED: $*, no target was fuzzed"
    exit 0
}

if cargo +nightly --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
else
    notice "no nightly toolchain; using $(cargo --version) with RUSTC_BOOTSTRAP=1"
    cargo=(cargo)
    export RUSTC_BOOTSTRAP=1
fi

if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
    notice "cargo-fuzz missing; installing it (cargo install cargo-fuzz --locked)"
    start=$SECONDS
    if ! cargo install cargo-fuzz --locked; then
        cannot_fuzz "cargo-fuzz could not be installed"
    fi
    notice "cargo-fuzz installed in $((SECONDS - start)) s"
    if ! "${cargo[@]}" fuzz --version >/dev/null 2>&1; then
        cannot_fuzz "cargo fuzz still does not run after installing"
    fi
fi
"${cargo[@]}" fuzz --version

mapfile -t targets < <("${cargo[@]}" fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "error: fuzz smoke: cargo fuzz list names no target" >&2
    exit 1
fi

start=$SECONDS
"${cargo[@]}" fuzz build
echo "built ${targets[*]} in $((SECONDS - start)) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    corpus="$work/corpus-$target"
    mkdir -p "$corpus"
    seeds=()
    if [ -d "corpus/$target" ]; then
        seeds=("corpus/$target")
    fi
    log="$work/$target.log"
    printf '%s: %s s from %s seed files ... ' "$target" "$seconds" \
        "$(find "corpus/$target" -type f 2>/dev/null | wc -l)"
    # -timeout: one input running this long is a hang, reported like a crash.
    if "${cargo[@]}" fuzz run "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -seed="$seed" -timeout=30 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -o 'DONE *cov: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
        echo "ok: ${runs:-?} runs, ${rate:-?} exec/s, coverage ${cov:-?}"
    else
        echo "FAILED"
        grep -m 3 -A 2 'panicked at\|==ERROR\|^error' "$log" || true
        echo "..."
        tail -n 40 "$log"
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "error: fuzz smoke: failing targets: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets ran ${seconds} s each without a crash"
