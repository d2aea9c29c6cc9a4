"""The production loop on real data: forecast store, forecast CLI, monitor, promote/rollback, retrain, replay and its leakage.

One small model (naive, drift, LightGBM; no ensemble, no SHAP) is trained once per module on BTC's data up to CUT, into a
temporary artifacts folder with its own MLflow store; tests that write the registry or the store work on copies of it.
"""
import json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, needs_data, run_cli, prices_times_random_walk_after

pytestmark = needs_data

CUT = '2025-10-31'          # the model sees data up to this day; the replay runs after it
COIN = 'BTC'
REPLAY_DAYS = 20


def _clear_mlflow_env():
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)


def _use(art: Path):
    "Point MLflow at the store of `art` (as the CLI does)."
    _clear_mlflow_env()
    from cryptoforecast.tracking import setup_mlflow
    setup_mlflow(artifacts_dir=art)


@pytest.fixture(scope='module')
def universe():
    from cryptoforecast.data import load_universe
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return load_universe(DATA_DIR)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, universe):
    "Artifacts folder with BTC v1 (champion and challenger) trained on data up to CUT; the training summary."
    from cryptoforecast import live
    art = tmp_path_factory.mktemp('live-art')
    _use(art)
    r = live.retrain(COIN, universe, CUT, art)
    assert r['version'] == 1 and r['promoted'] and r['data_last'] == CUT
    return art, r


def clone(art: Path, dst: Path) -> Path:
    "A copy of the artifacts folder's MLflow database (the model files stay where they are) without its forecast store."
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(art / 'mlflow.db', dst / 'mlflow.db')
    _use(dst)
    return dst


def test_forecast_on_the_training_day_equals_training_forecast(trained, universe, tmp_path):
    from cryptoforecast import live
    art, r = trained
    dst = clone(art, tmp_path / 'a')
    done = live.forecast_coin(COIN, universe, live.ALIASES, CUT, live.store_path(dst))
    assert [d['inserted'] for d in done] == [3, 3] and {d['origin'] for d in done} == {CUT}
    stored = live.read_forecasts(live.store_path(dst), COIN, 'champion').sort_values('horizon')
    ref = pd.read_parquet(Path(r['run_dir']) / 'forecast.parquet').sort_values('horizon')
    for c in ('mean', 'q0.025', 'q0.5', 'q0.975', 'sigma', 'close_origin'):
        np.testing.assert_allclose(stored[c].to_numpy(), ref[c].to_numpy(), rtol=1e-12, err_msg=c)
    # forecasting again the same day stores nothing new
    assert [d['inserted'] for d in live.forecast_coin(COIN, universe, live.ALIASES, CUT, live.store_path(dst))] == [0, 0]


def test_forecast_cli(trained, tmp_path, capsys):
    art, _ = trained
    dst = clone(art, tmp_path / 'cli')
    _clear_mlflow_env()
    args = ('forecast', '--crypto', COIN, '--as-of', '2025-11-05', '--artifacts-dir', dst, '--data-dir', DATA_DIR)
    first = run_cli(*args)
    assert first.returncode == 0 and 'not out of sample' not in first.stderr, first.stderr[-2000:]
    import sqlite3
    count = lambda: sqlite3.connect(dst / 'forecasts.sqlite').execute('select count(*) from forecasts').fetchone()[0]
    assert count() == 6
    from cryptoforecast.cli import main
    _clear_mlflow_env()
    assert main([*map(str, args)]) == 0 and count() == 6      # idempotent
    assert main(['forecast', '--crypto', 'ETH', '--artifacts-dir', str(dst), '--data-dir', str(DATA_DIR)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and err.strip().count('\n') == 0 and 'no registered model' in err, err
    assert main(['forecast', '--all', '--alias', '7', '--artifacts-dir', str(dst), '--data-dir', str(DATA_DIR)]) == 0
    err = capsys.readouterr().err
    assert 'BTC 7: skipped' in err and 'Traceback' not in err, err
    assert main(['forecast', '--crypto', 'NOSUCHCOIN', '--artifacts-dir', str(dst), '--data-dir', str(DATA_DIR)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'NOSUCHCOIN' in err, err
    assert main(['forecast', '--crypto', COIN, '--as-of', '2025-10-01', '--artifacts-dir', str(dst), '--data-dir', str(DATA_DIR)]) == 0
    assert 'trained on data up to 2025-10-31, after --as-of 2025-10-01' in capsys.readouterr().err   # in-sample: said so


_WRITER = """
import sys, time
import pandas as pd
from cryptoforecast import live
from cryptoforecast.metrics import QUANTILES, quantile_col
store, version, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rows = pd.DataFrame({'coin': 'BTC', 'origin': pd.date_range('2020-01-01', periods=n).strftime('%Y-%m-%d'), 'horizon': 1,
                     'alias': 'champion', 'model_version': version, 'model': 'toy', 'mean': 0.0, 'sigma': 0.1, 'point': 0.0,
                     'close_origin': 1.0, 'run_id': 'r', 'as_of': None, 'created_at': 'now'})
for q in QUANTILES: rows[quantile_col(q)] = q
if hold:  # a writer killed inside its transaction
    con = live.open_store(store)
    def work(c):
        c.executemany('insert into forecasts (coin, origin, horizon, alias, model_version, created_at) values (?, ?, ?, ?, ?, ?)',
                      [(r.coin, r.origin, 1, 'champion', version, 'now') for r in rows.itertuples()])
        print('inside', flush=True); time.sleep(hold)
    live._transaction(con, work)
else:
    for i in range(0, n, 10): live.insert_forecasts(store, rows.iloc[i:i + 10])
"""


def test_store_is_safe_under_concurrent_writers_and_kill_9(tmp_path):
    from cryptoforecast import live
    store = tmp_path / 'forecasts.sqlite'
    env = {**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, '-c', _WRITER, str(store), str(v), '200', '0'], env=env) for v in (1, 2, 3)]
    assert [p.wait(60) for p in procs] == [0, 0, 0]
    f = live.read_forecasts(store)
    assert len(f) == 600 and f.groupby('model_version').size().tolist() == [200, 200, 200]
    killed = subprocess.Popen([sys.executable, '-c', _WRITER, str(store), '9', '200', '30'], env=env, stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == 'inside'
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    f = live.read_forecasts(store)
    assert len(f) == 600 and 9 not in set(f['model_version'])   # all of the killed transaction or nothing
    assert live.insert_forecasts(store, f[f['model_version'] == 1].iloc[:5].assign(model_version=4, run_id='r', as_of=None, created_at='t')) == 5


def _replay(art, universe, days=REPLAY_DAYS):
    from cryptoforecast import live
    return live.replay(COIN, CUT, days, universe, art, window=60)


def test_replay_monitor_and_no_leakage(trained, universe, tmp_path):
    from cryptoforecast import live
    art, _ = trained
    a = clone(art, tmp_path / 'plain')
    t0 = time.time()
    plain = _replay(a, universe)
    seconds = time.time() - t0
    assert len(plain) == REPLAY_DAYS and plain['inserted'].tolist() == [6] * REPLAY_DAYS, plain
    assert plain['realised'].iloc[-1] > plain['realised'].iloc[10] > 0
    stored = live.read_forecasts(live.store_path(a))
    assert stored['origin'].max() == pd.Timestamp(CUT, tz='UTC') + pd.Timedelta(days=REPLAY_DAYS - 1)
    # the monitor's relative MAE of the champion's 1-day forecasts, recomputed by hand from the store and the prices
    last = pd.Timestamp(CUT, tz='UTC') + pd.Timedelta(days=REPLAY_DAYS - 1)
    table = live.monitor(universe, live.store_path(a), [COIN], last, 60)
    close = universe[COIN]['close']
    g = stored[(stored['alias'] == 'champion') & (stored['horizon'] == 1) & (stored['origin'] < last)]
    y = np.log(close.reindex(g['origin'] + pd.Timedelta(days=1)).to_numpy() / g['close_origin'].to_numpy())
    row = table[(table['alias'] == 'champion') & (table['horizon'] == 1)].iloc[0]
    assert row['n'] == REPLAY_DAYS - 1
    np.testing.assert_allclose(row['rel_mae'], np.mean(np.abs(y - g['mean'].to_numpy())) / np.mean(np.abs(y)), rtol=1e-10)
    assert 0 < row['cov80_lo'] < row['exp_cov80'] < row['cov80_hi'] < 1
    assert np.isfinite(row['psi']) == (live.load_version(COIN, 1).feature_importance() is not None)  # baselines use no features
    # future perturbation: BTC's prices after D change, the forecasts and monitor rows of days <= D do not
    D = pd.Timestamp(CUT, tz='UTC') + pd.Timedelta(days=10)
    perturbed = {**universe, COIN: prices_times_random_walk_after(universe[COIN], D, seed=3)}
    b = clone(art, tmp_path / 'perturbed')
    other = _replay(b, perturbed)
    s2 = live.read_forecasts(live.store_path(b))
    key = ['origin', 'horizon', 'alias', 'model_version']
    m = stored.merge(s2, on=key, suffixes=('', '_p'))
    early, late = m[m['origin'] <= D], m[m['origin'] > D]
    assert len(early) == 6 * 11
    for c in ('mean', 'q0.05', 'q0.95', 'sigma', 'close_origin'):
        np.testing.assert_array_equal(early[c].to_numpy(), early[f'{c}_p'].to_numpy(), err_msg=c)
    assert not np.allclose(late['close_origin'], late['close_origin_p'])   # the perturbation is seen once it is known
    pd.testing.assert_frame_equal(plain[plain['day'] <= D], other[other['day'] <= D])
    assert seconds < 20, f"replay of {REPLAY_DAYS} days took {seconds:.0f} s"


def test_monitor_cli_report_and_alert_exit_code(trained, universe, tmp_path):
    from cryptoforecast import live
    art, _ = trained
    a = clone(art, tmp_path / 'mon')
    store = live.store_path(a)
    for day in pd.date_range(CUT, periods=22, freq='D'): live.forecast_coin(COIN, universe, ['champion'], day, store)
    _clear_mlflow_env()
    code = live.monitor_cli(['--crypto', COIN, '--as-of', '2025-12-15', '--artifacts-dir', str(a), '--data-dir', str(DATA_DIR),
                             '--mlflow'])
    table = live.monitor(universe, store, [COIN], '2025-12-15', 60)
    assert code == (3 if (table['alerts'] != '').any() else 0)
    from mlflow import MlflowClient
    run = MlflowClient().get_run(live.resolve_version(COIN, '1').run_id)
    h1 = table[table['horizon'] == 1].iloc[0]
    assert run.data.metrics['live.champion.h1.rel_mae'] == pytest.approx(h1['rel_mae']) and h1['n'] == 22
    report = json.loads((a / 'monitor' / '2025-12-15.json').read_text())
    assert report['as_of'] == '2025-12-15' and len(report['rows']) == len(table) and (a / 'monitor' / '2025-12-15.md').exists()
    # forecasts of a broken model: the wrong sign, ten times too large, too narrow intervals
    f = live.read_forecasts(store, COIN)
    r = live.realise(f, universe, '2025-12-15')
    bad = f.assign(model_version=99, alias='challenger', mean=-10 * r['actual'].fillna(0.05), run_id=f['run_id'].iloc[0],
                   created_at='t')
    for q in live.QUANTILE_COLS: bad[q] = bad['mean'] + (float(q[1:]) - 0.5) * 1e-4
    bad['origin'] = bad['origin'].dt.strftime('%Y-%m-%d')
    live.insert_forecasts(store, bad)
    with pytest.MonkeyPatch.context() as mp:   # version 99 is not registered: its drift is judged with v1's model
        orig = live.load_version
        mp.setattr(live, 'load_version', lambda coin, v: orig(coin, 1))
        t = live.monitor(universe, store, [COIN], '2025-12-15', 60)
        alert = t[(t['alias'] == 'challenger') & (t['horizon'] == 1)].iloc[0]
        assert 'skill' in alert['alerts'] and 'cov80' in alert['alerts'] and alert['rel_mae'] > 5
        mp.setattr(sys, 'argv', ['cryptoforecast'])
        _clear_mlflow_env()
        assert live.monitor_cli(['--crypto', COIN, '--as-of', '2025-12-15', '--artifacts-dir', str(a),
                                 '--data-dir', str(DATA_DIR)]) == 3


def test_promote_needs_realised_evidence_and_rollback_restores(trained, universe, tmp_path):
    from mlflow import MlflowClient
    from cryptoforecast import live
    art, r = trained
    a = clone(art, tmp_path / 'reg')
    store = live.store_path(a)
    # a second version of the same run, as challenger: the champion stays v1
    reg = live.register_challenger(r['mlflow']['run_id'], COIN, 1.0)
    client = MlflowClient()
    assert reg == dict(version=2, champion_version=1, promoted=False)
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version) == 1
    # stored forecasts: the challenger knows half of the outcome, the champion says zero (the random walk)
    days = pd.date_range(CUT, periods=60, freq='D', tz='UTC')
    base = pd.DataFrame({'coin': COIN, 'origin': np.repeat(days, 2), 'horizon': np.tile([1, 7], 60)})
    base['close_origin'] = universe[COIN]['close'].reindex(base['origin']).to_numpy()
    y = live.realise(base, universe)['actual'].to_numpy()
    rows = []
    for alias, v, mean in (('champion', 1, 0 * y), ('challenger', 2, 0.5 * y)):
        f = base.assign(alias=alias, model_version=v, model='toy', mean=mean, sigma=0.03, point=mean, run_id=None, as_of=None,
                        created_at='t', origin=base['origin'].dt.strftime('%Y-%m-%d'))
        for q in live.QUANTILE_COLS: f[q] = f['mean']
        rows.append(f)
    live.insert_forecasts(store, pd.concat(rows))
    early = live.promote(COIN, universe, store, min_forecasts=30, as_of=days[10], artifacts_dir=a)
    assert not early['promoted'] and 'fewer than the 30' in early['reason']
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version) == 1
    _clear_mlflow_env()
    out = run_cli('registry', 'promote', '--coin', COIN, '--min-forecasts', '30', '--as-of', str(days[-1].date()),
                  '--artifacts-dir', a, '--data-dir', DATA_DIR)
    assert out.returncode == 0 and 'promoted v2' in out.stdout, out.stdout + out.stderr
    _use(a)
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version) == 2
    assert client.get_model_version('cryptoforecast-BTC', '2').tags['shadow.decision'] == 'promoted'
    evidence = json.loads((a / 'registry' / COIN / f"promote-{days[-1]:%Y%m%d}-v2-vs-v1.json").read_text())
    assert evidence['promoted'] and evidence['evidence']['p'] < 0.05 and evidence['evidence']['n'] >= 30
    back = run_cli('registry', 'rollback', '--coin', COIN, '--artifacts-dir', a)
    assert back.returncode == 0 and 'champion back to v1' in back.stdout, back.stdout + back.stderr
    _use(a)
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version) == 1
    assert live.champion_moves(store, COIN)['action'].tolist() == ['promote', 'rollback']
    # the reverse comparison (the zero forecast as challenger) is refused on the same evidence
    client.set_registered_model_alias('cryptoforecast-BTC', 'champion', '2')
    client.set_registered_model_alias('cryptoforecast-BTC', 'challenger', '1')
    assert not live.promote(COIN, universe, store, 30, as_of=days[-1])['promoted']


def test_replay_retrains_a_shadow_challenger_and_never_moves_the_champion(trained, universe, tmp_path):
    from mlflow import MlflowClient
    from cryptoforecast import live
    art, _ = trained
    a = clone(art, tmp_path / 'retrain')
    log = live.replay(COIN, CUT, 6, universe, a, retrain_every=3, min_forecasts=30)
    client = MlflowClient()
    assert log['event'].tolist() == ['', '', '', 'retrained v2', '', ''], log
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version) == 1   # too little evidence to move
    assert int(client.get_model_version_by_alias('cryptoforecast-BTC', 'challenger').version) == 2
    day3 = str((pd.Timestamp(CUT) + pd.Timedelta(days=3)).date())
    assert live._data_last(client.get_model_version('cryptoforecast-BTC', '2').run_id) == live.as_of_day(day3)  # trained as of day 3
    f = live.read_forecasts(live.store_path(a), COIN, 'challenger')
    assert f.groupby('model_version')['origin'].max().dt.strftime('%Y-%m-%d').to_dict() == {
        1: str((pd.Timestamp(CUT) + pd.Timedelta(days=2)).date()), 2: str((pd.Timestamp(CUT) + pd.Timedelta(days=5)).date())}
    assert client.get_model_version('cryptoforecast-BTC', '2').tags['shadow.decision'] == 'kept in shadow'
    bad = run_cli('retrain', '--crypto', 'NOSUCHCOIN', '--artifacts-dir', a, '--data-dir', DATA_DIR)
    assert bad.returncode == 2 and bad.stderr.startswith('error:'), bad.stderr
