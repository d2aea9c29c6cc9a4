"""Load and validate the whole universe: coins, rows, repaired rows by kind, seconds and peak memory.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/data_load.py
The first pass starts from an empty parquet cache (every file parsed and validated); the second reads the cache.
"""
import resource, tempfile, time
from collections import Counter

from cryptoforecast.config import resolve_data_dir
from cryptoforecast.data import REPAIRS, WARNINGS, scan

def run(data_dir, cache_dir):
    t0 = time.perf_counter()
    u = scan(data_dir, cache_dir=cache_dir)
    secs = time.perf_counter() - t0
    return u, secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

if __name__ == '__main__':
    data_dir = resolve_data_dir()
    cache = tempfile.mkdtemp(prefix='cf-cache-')
    print(f"data dir: {data_dir}")
    for label in ('cold (empty cache)', 'warm (parquet cache)'):
        u, secs, peak = run(data_dir, cache)
        tot = Counter()
        for r in u.reports: tot.update(r.counts)
        print(f"\n{label}")
        print(f"  coins: {len(u.coins)}   daily files: {len(u.reports)}   skipped (intraday): {len(u.skipped)}")
        print(f"  rows (chosen files): {sum(len(df) for df in u.coins.values())}   rows (all files): {sum(r.rows_out for r in u.reports)}")
        print("  repaired rows by kind: " + ', '.join(f"{k}={tot[k]}" for k in REPAIRS))
        print("  reported, kept:        " + ', '.join(f"{k}={tot[k]}" for k in WARNINGS))
        print(f"  seconds: {secs:.2f}   peak memory (max RSS so far): {peak/2**20:.0f} MiB")
