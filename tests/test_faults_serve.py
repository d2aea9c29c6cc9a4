"""Faults of `cryptoforecast serve`, each reproduced against a real server on 127.0.0.1: payloads the file readers refuse,
requests past the size bounds, a request past its time, SIGTERM mid-request, a heavy request beside a light one, a
restart right after a stop, a damaged serving-model cache and an artifacts folder that is a file.

Every server is a child process stopped with its whole process tree; traffic is a few requests, each with a timeout."""
import http.client, json, os, signal, subprocess, sys, threading, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from conftest import DATA_DIR, needs_data

pytestmark = needs_data
COIN = 'BTC'
EXE = Path(sys.executable).parent / 'cryptoforecast'
MEMORY_CAP = 2 * 2**30   # a server tree past this is killed: the test fails instead of the machine swapping


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess: return []


def tree_rss(pid: int) -> int:
    total = 0
    for q in tree(pid):
        try: total += q.memory_info().rss
        except psutil.NoSuchProcess: pass
    return total


def kill_tree(proc: subprocess.Popen) -> None:
    for q in reversed(tree(proc.pid)):
        try: q.kill()
        except psutil.NoSuchProcess: pass
    proc.wait(30)


def start(art: Path, port: int, *extra: str) -> subprocess.Popen:
    "`cryptoforecast serve` of the trained BTC model, answering /ping (within 180 s)."
    env = {k: v for k, v in os.environ.items() if not k.startswith('MLFLOW_')}
    proc = subprocess.Popen([str(EXE), 'serve', '--coin', COIN, '--port', str(port), '--artifacts-dir', str(art), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None: pytest.fail(f"serve exited {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            if request(port, 'GET', '/ping', timeout=2)[0] == 200: return proc
        except OSError: time.sleep(0.5)
    kill_tree(proc)
    pytest.fail('the server did not answer /ping within 180 s')


def request(port: int, method: str, path: str, body: bytes = b'', timeout: float = 60, watch: int | None = None):
    "(status, parsed body, seconds); with `watch`, the server tree is killed if it grows past MEMORY_CAP meanwhile."
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    peak, done = [0], threading.Event()
    def watcher():
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss(watch))
            if peak[0] > MEMORY_CAP:
                for q in tree(watch): q.kill()
    if watch: threading.Thread(target=watcher, daemon=True).start()
    t = time.perf_counter()
    try:
        conn.request(method, path, body=body or None, headers={'Content-Type': 'application/json'})
        r = conn.getresponse()
        text = r.read()
    finally:
        done.set()
        conn.close()
    try: parsed = json.loads(text)
    except ValueError: parsed = {'message': text.decode(errors='replace')}
    request.peak = peak[0]
    return r.status, parsed, time.perf_counter() - t


def payload(frames: dict[str, pd.DataFrame]) -> bytes:
    parts = []
    for sym, df in frames.items():
        d = df[['open', 'high', 'low', 'close', 'volume']].reset_index()
        d['date'] = pd.to_datetime(d['date']).dt.strftime('%Y-%m-%d')
        parts.append(d.assign(symbol=sym))
    d = pd.concat(parts, ignore_index=True)
    return json.dumps({'dataframe_split': json.loads(d.to_json(orient='split', index=False))}).encode()


def post(port: int, frames: dict, **kw):
    return request(port, 'POST', '/invocations', payload(frames), **kw)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A small BTC model trained and registered into a fresh artifacts folder; (artifacts, universe)."
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)
    from cryptoforecast import live
    from cryptoforecast.data import load_universe
    from cryptoforecast.tracking import setup_mlflow
    art = tmp_path_factory.mktemp('serve-faults')
    setup_mlflow(artifacts_dir=art)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe(DATA_DIR)
    live.retrain(COIN, universe, '2025-12-31', art)
    return art, universe


@pytest.fixture(scope='module')
def served(trained):
    "One server (defaults: 2 workers, 30 s, 8 MiB) for the payload tests; (port, process, 400 days of BTC, universe)."
    art, universe = trained
    port = free_port()
    proc = start(art, port)
    yield port, proc, universe[COIN].loc[:'2026-02-01'].iloc[-400:], universe
    kill_tree(proc)


def heavy(universe: dict) -> dict:
    "Every coin's last 600 days: a large request within the bounds (about 5 MB)."
    return {s: df.loc[:'2026-02-01'].iloc[-600:] for s, df in universe.items()}


def test_payloads_the_file_readers_refuse_are_400(served):
    port, _, days, _ = served
    d = days.copy()
    mid = d.index[200]
    cases = {'high < low': (d.assign(high=d['low'], low=d['high']), 'high < low'),
             'close 100x the high': (d.assign(close=d['close'].where(d.index != mid, d['high'] * 100)), 'outside low..high'),
             'prices of 1e300': (d.assign(open=1e300, high=1e300, low=1e300, close=1e300), 'price above 1e+09'),
             'zero price': (d.assign(low=d['low'].where(d.index != mid, 0.0)), 'missing or zero'),
             'dates in 2099': (d.set_axis(pd.date_range('2099-01-01', periods=len(d), tz='UTC', name='date')), 'implausible date'),
             'repeated date': (pd.concat([d, d.iloc[[200]]]).sort_index(), 'without repeats')}
    for name, (df, reason) in cases.items():
        status, body, _ = post(port, {COIN: df})
        assert status == 400 and reason in body.get('message', ''), (name, status, str(body)[:300])
    wrong = json.loads(payload({COIN: d}))
    wrong['dataframe_split']['data'][3][4] = 'abc'   # close as text
    status, body, _ = request(port, 'POST', '/invocations', json.dumps(wrong).encode())
    assert status == 400 and 'not a number' in body.get('message', ''), body


def test_price_quantiles_are_answered(served):
    from cryptoforecast.metrics import QUANTILE_COLS
    port, _, days, _ = served
    status, body, _ = post(port, {COIN: days})
    assert status == 200, body
    got = pd.DataFrame(body['predictions'])
    for q in QUANTILE_COLS:
        np.testing.assert_allclose(got[f"price_{q}"], got['close_origin'] * np.exp(got[q]), rtol=1e-12)
    assert (np.diff(got[[f"price_{q}" for q in QUANTILE_COLS]].to_numpy(), axis=1) >= 0).all()
    assert got['price_q0.5'].between(got['price_q0.025'], got['price_q0.975']).all()


def test_abusive_requests_are_refused_early(served):
    "Thousands of one-row symbols over 150 years of dates once ran to 13.7 GB; now 400 at once. A body over 8 MiB: 413."
    port, proc, days, _ = served
    row = days.iloc[[-1]]
    dates = pd.date_range('1950-01-01', '2099-12-31', periods=5000, tz='UTC', name='date').normalize()
    many = {f"X{i}": row.set_axis(dates[[i]]) for i in range(5000)} | {COIN: days}
    before = tree_rss(proc.pid)
    status, body, seconds = post(port, many, watch=proc.pid)
    assert proc.poll() is None and request.peak < MEMORY_CAP, f"server tree grew to {request.peak / 2**30:.1f} GiB"
    assert status == 400 and 'symbols in one request' in body.get('message', ''), (status, str(body)[:300])
    assert seconds < 10 and request.peak - before < 500 * 2**20
    status, body, _ = request(port, 'POST', '/invocations', b' ' * (9 * 2**20))
    assert status == 413, (status, str(body)[:300])


def test_a_heavy_request_does_not_hold_up_a_light_one(served):
    port, _, days, universe = served
    light_alone = min(post(port, {COIN: days})[2] for _ in range(2))
    answers = {}
    t = threading.Thread(target=lambda: answers.update(heavy=post(port, heavy(universe), timeout=120)))
    t.start()
    time.sleep(1.0)                          # the heavy request is being scored
    status, _, light = post(port, {COIN: days})
    t.join(130)
    assert status == 200 and answers['heavy'][0] == 200, answers.get('heavy', [None])[0]
    heavy_s = answers['heavy'][2]
    print(f"light alone {light_alone:.2f}s, light beside heavy {light:.2f}s, heavy {heavy_s:.2f}s")
    assert light < max(3 * light_alone, 2.0) and light < heavy_s, (light_alone, light, heavy_s)


@pytest.fixture(scope='module')
def hasty(trained):
    "A server with a 0.5 s limit per request (the heavy request takes 1 s or more); (port, process, universe)."
    art, universe = trained
    port = free_port()
    proc = start(art, port, '--timeout', '0.5')
    yield port, proc, universe
    kill_tree(proc)


def workers(proc) -> set[int]:
    return {q.pid for q in tree(proc.pid)[1:] if 'resource_tracker' not in ' '.join(q.cmdline())}


def test_work_stops_at_the_timeout(hasty):
    port, proc, universe = hasty
    before = workers(proc)
    status, body, seconds = post(port, heavy(universe), timeout=60)
    assert status == 504 and seconds < 5, (status, seconds, str(body)[:200])
    time.sleep(1)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in before - workers(proc))
    assert len(before - workers(proc)) == 1    # the worker that overran was killed, the other kept
    deadline = time.time() + 120               # and a fresh one takes its place
    while len(workers(proc)) < len(before) and time.time() < deadline: time.sleep(0.5)
    assert len(workers(proc)) == len(before)


def test_sigterm_mid_request_stops_everything(hasty):
    port, proc, universe = hasty
    pids = [q.pid for q in tree(proc.pid)]
    t = threading.Thread(target=lambda: post(port, heavy(universe), timeout=60), daemon=True)
    t.start()
    time.sleep(0.25)
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    deadline = time.time() + 10
    while any(psutil.pid_exists(p) for p in pids) and time.time() < deadline: time.sleep(0.2)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running after SIGTERM: {alive}"


def test_restart_at_once_after_a_stop(trained, served):
    "The server closes its keep-alive connections when stopped (TIME_WAIT on its port); a restart binds at once."
    art, _ = trained
    port, proc, _, _ = served
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    conn.request('GET', '/ping')
    conn.getresponse().read()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    conn.close()
    t = time.perf_counter()
    again = start(art, port)
    print(f"restarted in {time.perf_counter() - t:.1f}s")
    kill_tree(again)


@pytest.mark.parametrize('damage', ['truncated MLmodel', 'garbage forecaster'])
def test_a_damaged_serving_model_is_rebuilt(trained, damage):
    art, universe = trained
    model = art / 'serve' / f"{COIN}-v1"
    assert (model / 'MLmodel').exists()
    if damage == 'truncated MLmodel':
        text = (model / 'MLmodel').read_bytes()
        (model / 'MLmodel').write_bytes(text[:len(text) // 3])
    else:
        for f in (model / 'artifacts').rglob('*'):
            if f.is_file(): f.write_bytes(b'\x00garbage' * 10)
    port = free_port()
    proc = start(art, port)
    try:
        status, body, _ = post(port, {COIN: universe[COIN].loc[:'2026-02-01'].iloc[-400:]})
        assert status == 200, str(body)[:300]
    finally: kill_tree(proc)


def test_artifacts_dir_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / 'artifacts'
    f.write_text('not a folder')
    r = subprocess.run([str(EXE), 'serve', '--coin', COIN, '--artifacts-dir', str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'not a folder' in r.stderr, r.stderr[-500:]
    assert len(r.stderr.strip().splitlines()) == 1
