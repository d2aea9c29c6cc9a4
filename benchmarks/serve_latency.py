"""Latency and memory of `cryptoforecast serve`: one coin's model, requests of 400 days of OHLCV, on 127.0.0.1.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/serve_latency.py [--coin BTC] [--requests 100]
     [--artifacts DIR]   (reuse a folder this script trained before: its path is printed)

Trains a small model of the coin (naive, drift, LightGBM, as `cryptoforecast retrain` does) into a fresh artifacts
folder with its own MLflow store, starts `cryptoforecast serve` in a child process, waits for /ping, posts the same
400-day request `--requests` times one after another, and prints p50/p95/max latency and the server's memory (RSS of
its process tree) before and after. Target (for information): p95 under 300 ms on 2 cores.

Then, each bounded in time and memory (all traffic to 127.0.0.1):
- a light request (400 days of the coin) alone, and while a heavy one (every coin's last 600 days, about 5 MB) is scored;
- an abusive request (5000 one-row symbols, dates spread over 1950..2099): its answer, seconds, the CPU its server
  still uses in the 5 s after the answer and the server tree's peak memory; the server is killed if its tree passes `--memory-cap-gb` (default 3);
- a restart on the same port right after SIGTERM with a keep-alive connection open: seconds until /ping answers.
"""
import argparse, http.client, json, os, signal, socket, subprocess, sys, tempfile, threading, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from cryptoforecast import live
from cryptoforecast.data import load_universe
from cryptoforecast.errors import UserError, exit_status
from cryptoforecast.tracking import setup_mlflow

EXE = Path(sys.executable).parent / 'cryptoforecast'

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def family(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess: return []

def tree_rss(pid: int) -> float:
    "MiB resident in process `pid` and its children."
    total = 0
    for q in family(pid):
        try: total += q.memory_info().rss
        except psutil.NoSuchProcess: pass
    return total / 2 ** 20

def tree_cpu(pid: int) -> float:
    "CPU seconds (user + system) used so far by process `pid` and its children."
    total = 0.0
    for q in family(pid):
        try: total += sum(q.cpu_times()[:2])
        except psutil.NoSuchProcess: pass
    return total

def kill_tree(proc) -> None:
    for q in reversed(family(proc.pid)):
        try: q.kill()
        except psutil.NoSuchProcess: pass
    proc.wait(30)

def post(port: int, body: bytes, timeout: float = 120) -> tuple[int, str, float]:
    "(status, first 120 characters of the answer, seconds)."
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    t = time.perf_counter()
    try:
        conn.request('POST', '/invocations', body=body, headers={'Content-Type': 'application/json'})
        r = conn.getresponse()
        text = r.read().decode(errors='replace')
        return r.status, text[:120], time.perf_counter() - t
    except OSError as e: return 0, f"{type(e).__name__}: {e}", time.perf_counter() - t
    finally: conn.close()

def payload(frames: dict) -> bytes:
    parts = []
    for sym, df in frames.items():
        d = df[['open', 'high', 'low', 'close', 'volume']].reset_index()
        d['date'] = pd.to_datetime(d['date']).dt.strftime('%Y-%m-%d')
        parts.append(d.assign(symbol=sym))
    d = pd.concat(parts, ignore_index=True)
    return json.dumps({'dataframe_split': json.loads(d.to_json(orient='split', index=False))}).encode()

def start(coin: str, art: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(EXE), 'serve', '--coin', coin, '--port', str(port), '--artifacts-dir', str(art)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    while True:
        try:
            with urllib_open(port): return proc
        except OSError:
            if proc.poll() is not None: raise UserError(f"the server exited {proc.returncode}: {proc.stderr.read()[-300:]}")
            if time.perf_counter() - t0 > 180:
                kill_tree(proc)
                raise UserError('the server did not answer /ping within 180 s')
            time.sleep(0.2)

def urllib_open(port: int):
    import urllib.request
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)

def light_beside_heavy(port: int, light: bytes, heavy: bytes) -> str:
    alone = [post(port, light)[2] for _ in range(3)]
    out = {}
    t = threading.Thread(target=lambda: out.update(heavy=post(port, heavy)))
    t.start()
    time.sleep(1.0)
    status, _, beside = post(port, light)
    t.join(180)
    h = out.get('heavy', (0, 'no answer', float('nan')))
    return (f"light request alone {min(alone):.2f}s (best of 3); beside a heavy one {beside:.2f}s (HTTP {status}); "
            f"the heavy one {h[2]:.2f}s (HTTP {h[0]}, {len(heavy) / 2**20:.1f} MB)")

def abusive(proc, port: int, days: pd.DataFrame, coin: str, cap_gb: float) -> str:
    dates = pd.date_range('1950-01-01', '2099-12-31', periods=5000, tz='UTC', name='date').normalize()
    row = days.iloc[[-1]]
    body = payload({f"X{i}": row.set_axis(dates[[i]]) for i in range(5000)} | {coin: days})
    before, peak, done, killed = tree_rss(proc.pid), [0.0], threading.Event(), []
    def watch():
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss(proc.pid))
            if peak[0] > cap_gb * 1024:
                killed.append(True)
                for q in family(proc.pid): q.kill()
    threading.Thread(target=watch, daemon=True).start()
    light, beside = payload({coin: days}), {}
    t = threading.Thread(target=lambda: (time.sleep(1.0), beside.update(light=post(port, light, timeout=120))), daemon=True)
    t.start()
    status, text, seconds = post(port, body, timeout=120)
    t.join(130)
    cpu = tree_cpu(proc.pid)
    time.sleep(5)
    after = tree_cpu(proc.pid) - cpu
    done.set()
    return (f"abusive request ({len(body) / 2**20:.1f} MB, 5001 symbols): HTTP {status} in {seconds:.1f}s, server tree "
            f"{before:.0f} MiB before, peak {peak[0]:.0f} MiB" + (f" (killed at the {cap_gb:g} GB cap)" if killed else '')
            + f"; CPU in the 5 s after its answer {after:.1f}s"
            + f"; a light request sent 1 s after it: {beside.get('light', (0, '', float('nan')))[2]:.2f}s"
            + f"; answer {text[:100]!r}")

def restart(coin: str, art: Path, proc, port: int) -> tuple[subprocess.Popen, str]:
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    conn.request('GET', '/ping')
    conn.getresponse().read()
    proc.send_signal(signal.SIGTERM)
    t = time.perf_counter()
    try: proc.wait(60)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        return None, "SIGTERM: the server was still running 60 s later (killed)"
    stopped = time.perf_counter() - t
    conn.close()
    t = time.perf_counter()
    try: again = start(coin, art, port)
    except UserError as e: return None, f"restart on the same port: {e} after {time.perf_counter() - t:.1f}s"
    return again, f"stopped {stopped:.1f}s after SIGTERM; restarted on the same port: /ping answers after {time.perf_counter() - t:.1f}s"

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--coin', default='BTC')
    ap.add_argument('--requests', type=int, default=100)
    ap.add_argument('--trained-until', default='2025-12-31')
    ap.add_argument('--artifacts', type=Path, default=None, help='a folder this script trained before (skips training)')
    ap.add_argument('--memory-cap-gb', type=float, default=3.0)
    a = ap.parse_args()
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe()
    art = a.artifacts or Path(tempfile.mkdtemp(prefix='serve-latency-'))
    setup_mlflow(artifacts_dir=art)
    if a.artifacts is None:
        t0 = time.perf_counter()
        live.retrain(a.coin, universe, a.trained_until, art)
        print(f"trained {a.coin} until {a.trained_until} in {time.perf_counter() - t0:.0f}s into {art}")
    port = free_port()
    t0 = time.perf_counter()
    proc = start(a.coin, art, port)
    try:
        print(f"server up in {time.perf_counter() - t0:.1f}s, {tree_rss(proc.pid):.0f} MiB")
        days = universe[a.coin].iloc[-400:]
        body = payload({a.coin: days})
        ms = 1000 * np.array([post(port, body)[2] for _ in range(a.requests)])
        print(f"{a.requests} requests of 400 days: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, "
              f"max {ms.max():.0f} ms (the first {ms[0]:.0f} ms); server memory {tree_rss(proc.pid):.0f} MiB")
        print(light_beside_heavy(port, body, payload({s: df.iloc[-600:] for s, df in universe.items()})), flush=True)
        print(abusive(proc, port, days, a.coin, a.memory_cap_gb), flush=True)
        if proc.poll() is None and family(proc.pid):
            proc, line = restart(a.coin, art, proc, port)
            print(line)
    finally:
        if proc is not None and proc.poll() is None: kill_tree(proc)

if __name__ == '__main__': sys.exit(exit_status(main))
