#!/usr/bin/env python3
"""amx-llm against llama.cpp's llama-bench, side by side: prompt processing of P tokens
(pp) and generation of D tokens (tg), same model file and thread count, the two engines'
calls alternating round by round; medians and the ratio per case.

    python3 amx-llm/scripts/vs_llama.py LLAMA_BIN_DIR MODEL [MODEL ...]
        [--threads 1,2] [--rounds 3] [--prefill 512] [--decode 64] [--amx-llm PATH]

LLAMA_BIN_DIR: what ../shared/peers/llama-cpp.sh prints. Run with nothing else on the
machine (a niced neighbour still wrecks 2-thread timings).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def llama_bench(bin_dir, model, threads, prefill, decode):
    """llama-bench's tokens/s for pp (prefill) and tg (decode), one repetition each."""
    out = subprocess.run(
        [os.path.join(bin_dir, "llama-bench"), "-m", model, "-p", str(prefill), "-n", str(decode),
         "-t", str(threads), "-r", "1", "-o", "jsonl"],
        capture_output=True, text=True, check=True).stdout
    pp = tg = None
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            pp = r["avg_ts"]
        elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            tg = r["avg_ts"]
    return pp, tg


def amx_llm_bench(exe, model, threads, prefill, decode):
    out = subprocess.run(
        [exe, "bench", model, "--prefill", str(prefill), "--decode", str(decode),
         "--threads", str(threads), "--json"],
        capture_output=True, text=True, check=True).stdout
    r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    return r["prefill_tokens_per_s"], r["decode_tokens_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("llama_bin")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--amx-llm", default="target/release/amx-llm")
    a = ap.parse_args()
    print(f"| model | threads | amx-llm pp{a.prefill} | llama.cpp pp{a.prefill} | ratio "
          f"| amx-llm tg{a.decode} | llama.cpp tg{a.decode} | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for model in a.models:
        for t in [int(x) for x in a.threads.split(",")]:
            ours, theirs = {"pp": [], "tg": []}, {"pp": [], "tg": []}
            for i in range(a.rounds):
                print(f"{os.path.basename(model)} t={t} round {i + 1}/{a.rounds}", file=sys.stderr)
                pp, tg = llama_bench(a.llama_bin, model, t, a.prefill, a.decode)
                theirs["pp"].append(pp)
                theirs["tg"].append(tg)
                pp, tg = amx_llm_bench(a.amx_llm, model, t, a.prefill, a.decode)
                ours["pp"].append(pp)
                ours["tg"].append(tg)
            med = {k: (statistics.median(ours[k]), statistics.median(theirs[k])) for k in ours}
            print(f"| {os.path.basename(model)} | {t} | {med['pp'][0]:.0f} | {med['pp'][1]:.0f} "
                  f"| {med['pp'][0] / med['pp'][1]:.2f}x | {med['tg'][0]:.1f} | {med['tg'][1]:.1f} "
                  f"| {med['tg'][0] / med['tg'][1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
