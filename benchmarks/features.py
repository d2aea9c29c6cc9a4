"""Feature frames for the whole universe: coins, columns, rows, seconds and peak memory; then TA-Lib against plain pandas.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/features.py
Target: under 20 s and 2 GB for the whole universe on the project machine (loading the raw files is timed apart).
"""
import os, resource, time

import numpy as np
import pandas as pd
import talib

from cryptoforecast.cli import UserError
from cryptoforecast.config import resolve_data_dir
from cryptoforecast.data import load_universe
from cryptoforecast.features import build_features, feature_columns, market_context, warmup_days

def peak_mib() -> float: return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10

def all_features(universe):
    "Build every coin's feature frame; returns the frames and the coins too short for the warm-up."
    market = market_context(universe)
    frames, short = {}, []
    for sym, df in universe.items():
        try: frames[sym] = build_features(df, market)
        except UserError: short.append(f"{sym} ({len(df)} rows)")
    return frames, short

# The same indicators with plain pandas rolling / ewm operations (Wilder smoothing for RSI and ATR).
def pandas_sma(c: pd.Series, n=20): return c.rolling(n).mean()
def pandas_ema(c: pd.Series, n=20): return c.ewm(span=n, adjust=False).mean()
def pandas_rsi(c: pd.Series, n=14):
    d = c.diff()
    up, down = d.clip(lower=0).ewm(alpha=1/n, adjust=False).mean(), (-d.clip(upper=0)).ewm(alpha=1/n, adjust=False).mean()
    return 100 - 100 / (1 + up / down)
def pandas_atr(h: pd.Series, l: pd.Series, c: pd.Series, n=14):
    tr = pd.concat([h - l, (h - c.shift()).abs(), (l - c.shift()).abs()], axis=1).max(axis=1)
    return tr.ewm(alpha=1/n, adjust=False).mean()
def pandas_bbands(c: pd.Series, n=20):
    m, s = c.rolling(n).mean(), c.rolling(n).std(ddof=0)
    return m + 2 * s, m, m - 2 * s

INDICATORS = {
    'SMA(20)':    (lambda d: talib.SMA(d['c'], 20), lambda d: pandas_sma(d['C'])),
    'EMA(20)':    (lambda d: talib.EMA(d['c'], 20), lambda d: pandas_ema(d['C'])),
    'RSI(14)':    (lambda d: talib.RSI(d['c'], 14), lambda d: pandas_rsi(d['C'])),
    'ATR(14)':    (lambda d: talib.ATR(d['h'], d['l'], d['c'], 14), lambda d: pandas_atr(d['H'], d['L'], d['C'])),
    'BBANDS(20)': (lambda d: talib.BBANDS(d['c'], 20, 2, 2, 0)[0], lambda d: pandas_bbands(d['C'])[0]),
}

def talib_vs_pandas(universe, repeat=3):
    "Seconds for each indicator over the whole universe, both ways, and the largest relative gap after 200 days."
    data = [dict(c=df.close.to_numpy(), h=df.high.to_numpy(), l=df.low.to_numpy(), C=df.close, H=df.high, L=df.low)
            for df in universe.values() if len(df) > 300]
    rows = []
    for name, (ta, pdf) in INDICATORS.items():
        secs = []
        for f in (ta, pdf):
            t0 = time.perf_counter()
            for _ in range(repeat): out = [np.asarray(f(d), dtype=float) for d in data]
            secs.append((time.perf_counter() - t0) / repeat)
            if f is ta: ta_out = out
        gap = max(np.nanmax(np.abs(a[200:] - b[200:]) / np.abs(a[200:])) for a, b in zip(ta_out, out))
        rows.append(dict(indicator=name, talib_ms=1e3 * secs[0], pandas_ms=1e3 * secs[1], speedup=secs[1] / secs[0], max_rel_gap=gap))
    return pd.DataFrame(rows)

if __name__ == '__main__':
    data_dir = resolve_data_dir()
    t0 = time.perf_counter()
    universe = load_universe(data_dir)
    load_s = time.perf_counter() - t0
    print(f"data dir: {data_dir}   coins loaded: {len(universe)} in {load_s:.1f} s (not counted below); peak memory so far {peak_mib():.0f} MiB")
    t0, c0 = time.perf_counter(), time.process_time()
    frames, short = all_features(universe)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    ncols = sorted(len(feature_columns(f)) for f in frames.values())
    print(f"\nfeatures for the universe (market context + {len(frames)} feature frames)")
    print(f"  coins: {len(frames)}   skipped, shorter than the {warmup_days()}-day warm-up: {len(short)} {short}")
    print(f"  feature columns per coin: min {ncols[0]}, max {ncols[-1]}   rows (after warm-up): {sum(len(f) for f in frames.values())}")
    print(f"  cells: {sum(f.shape[0] * f.shape[1] for f in frames.values()):,}   seconds: {secs:.2f} (CPU {cpu:.2f})   ({1e3 * secs / len(frames):.0f} ms per coin)")
    print(f"  peak memory (max RSS of the process): {peak_mib():.0f} MiB   targets: < 20 s, < 2048 MiB")
    print(f"  load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time on a shared machine exceeds CPU time)")
    del frames
    print("\nTA-Lib against plain pandas (whole universe, coins with > 300 rows, mean of 3 runs)")
    with pd.option_context('display.float_format', '{:.3g}'.format, 'display.width', 120):
        print(talib_vs_pandas(universe).to_string(index=False))
