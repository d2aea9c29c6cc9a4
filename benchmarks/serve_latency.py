"""Latency and memory of `cryptoforecast serve`: one coin's model, requests of 400 days of OHLCV, on 127.0.0.1.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/serve_latency.py [--coin BTC] [--requests 100]

Trains a small model of the coin (naive, drift, LightGBM, as `cryptoforecast retrain` does) into a fresh artifacts
folder with its own MLflow store, starts `cryptoforecast serve` in a child process, waits for /ping, posts the same
400-day request `--requests` times one after another, and prints p50/p95/max latency and the server's memory (RSS of
its process tree) before and after. Target (for information): p95 under 300 ms on 2 cores.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, time, urllib.request, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from cryptoforecast import live
from cryptoforecast.data import load_universe
from cryptoforecast.errors import exit_status
from cryptoforecast.tracking import setup_mlflow

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def tree_rss(pid: int) -> float:
    "MiB resident in process `pid` and its children."
    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2 ** 20

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--coin', default='BTC')
    ap.add_argument('--requests', type=int, default=100)
    ap.add_argument('--trained-until', default='2025-12-31')
    a = ap.parse_args()
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)
    art = Path(tempfile.mkdtemp(prefix='serve-latency-'))
    setup_mlflow(artifacts_dir=art)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe()
    t0 = time.perf_counter()
    live.retrain(a.coin, universe, a.trained_until, art)
    print(f"trained {a.coin} until {a.trained_until} in {time.perf_counter() - t0:.0f}s into {art}")
    port = free_port()
    exe = Path(sys.executable).parent / 'cryptoforecast'
    proc = subprocess.Popen([str(exe), 'serve', '--coin', a.coin, '--port', str(port), '--artifacts-dir', str(art)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.perf_counter()
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2): break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120: sys.exit('error: the server did not start')
                time.sleep(0.5)
        print(f"server up in {time.perf_counter() - t0:.1f}s, {tree_rss(proc.pid):.0f} MiB")
        df = universe[a.coin].iloc[-400:][['open', 'high', 'low', 'close', 'volume']].reset_index()
        df['date'] = df['date'].dt.strftime('%Y-%m-%d')
        body = json.dumps({'dataframe_split': json.loads(df.to_json(orient='split', index=False))}).encode()
        seconds = []
        for _ in range(a.requests):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={'Content-Type': 'application/json'})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as r: r.read()
            seconds.append(time.perf_counter() - t)
        ms = 1000 * np.array(seconds)
        print(f"{a.requests} requests of 400 days: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, "
              f"max {ms.max():.0f} ms (the first {ms[0]:.0f} ms); server memory {tree_rss(proc.pid):.0f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

if __name__ == '__main__': sys.exit(exit_status(main))
