"""`cryptoforecast serve` over HTTP: a small BTC model trained once, served on 127.0.0.1, 400 posted days answered like
`predict_frame`, bad requests refused with HTTP 400 and a message, and stopping the PID stops everything (its workers too)."""
import json, os, signal, socket, subprocess, sys, time, urllib.error, urllib.request, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, needs_data

pytestmark = needs_data
COIN = 'BTC'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def post(port: int, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
                                 headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=60) as r: return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e: return e.code, json.loads(e.read())


def split(df: pd.DataFrame) -> dict:
    df = df.reset_index()
    df['date'] = df['date'].dt.strftime('%Y-%m-%d')
    return {'dataframe_split': json.loads(df.to_json(orient='split', index=False))}


@pytest.fixture(scope='module')
def served(tmp_path_factory):
    "A trained BTC model served by `cryptoforecast serve` in a child process; (port, process, artifacts, BTC's OHLCV)."
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)
    from cryptoforecast import live
    from cryptoforecast.data import load_universe
    from cryptoforecast.tracking import setup_mlflow
    art = tmp_path_factory.mktemp('serve-art')
    setup_mlflow(artifacts_dir=art)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe(DATA_DIR)
    live.retrain(COIN, universe, '2025-12-31', art)
    port = free_port()
    exe = Path(sys.executable).parent / 'cryptoforecast'
    env = {k: v for k, v in os.environ.items() if not k.startswith('MLFLOW_')}
    proc = subprocess.Popen([str(exe), 'serve', '--coin', COIN, '--port', str(port), '--artifacts-dir', str(art)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2): break
        except OSError: time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()
    else: pytest.fail('the server did not answer /ping within 90 s')
    yield port, proc, art, universe[COIN]
    if proc.poll() is None: proc.kill()


def test_400_days_are_answered_like_predict_frame(served):
    from cryptoforecast.features import build_features, market_context
    from cryptoforecast.live import latest_forecast, load_version
    port, _, art, btc = served
    days = btc.loc[:'2026-02-01'].iloc[-400:][['open', 'high', 'low', 'close', 'volume']]
    status, body = post(port, split(days))
    assert status == 200, body
    got = pd.DataFrame(body['predictions'])
    assert got['horizon'].tolist() == [1, 7, 30] and set(got['model_version']) == {1} and set(got['data_last']) == {'2026-02-01'}
    days.attrs['symbol'] = COIN
    frame = build_features(days, market=market_context({'BTC': days}))
    want = latest_forecast(load_version(COIN, 1), frame)
    for c in ('mean', 'q0.025', 'q0.5', 'q0.975', 'sigma', 'close_origin'):
        np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-9, err_msg=c)
    assert set(got['origin']) == {'2026-02-01'}


def test_bad_requests_are_400_with_a_reason(served):
    port, _, _, btc = served
    days = btc.loc[:'2026-02-01'].iloc[-400:][['open', 'high', 'low', 'close', 'volume']]
    cases = {'too few rows': (days.iloc[-100:], 'the model needs at least'),
             'missing column': (days.drop(columns='volume'), 'missing column(s) volume'),
             'non-finite price': (days.assign(close=days['close'].where(days.index != days.index[50])), 'non-finite'),
             'unsorted dates': (days.iloc[::-1], 'sorted ascending')}
    for name, (df, reason) in cases.items():
        status, body = post(port, split(df))
        assert status == 400 and reason in body.get('message', ''), (name, status, body)


def test_serve_binds_localhost_only_and_stops_with_its_pid(served):
    import psutil
    port, proc, _, _ = served
    p = psutil.Process(proc.pid)
    family = [p, *p.children(recursive=True)]               # the server and its scoring workers
    assert len(family) >= 3
    listening = [c for q in family for c in q.net_connections(kind='inet') if c.status == psutil.CONN_LISTEN]
    assert listening and all(c.laddr.ip == '127.0.0.1' for c in listening)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in (0, -signal.SIGTERM)     # uvicorn shuts down, then re-raises the signal it caught
    time.sleep(2)
    assert [q.pid for q in family if q.is_running() and q.status() != psutil.STATUS_ZOMBIE] == []   # nothing left behind
    with socket.socket() as s:   # nothing listens on the port any more (closed connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', port))
