"""The production loop on real data: forecast store, forecast CLI, monitor, promote/rollback, retrain, replay and its leakage.

One small model (naive, drift, LightGBM; no ensemble, no SHAP) is trained once per module on BTC's data up to CUT, into a
temporary artifacts folder with its own MLflow store; tests that write the registry or the store work on copies of it.
"""
import json, multiprocessing, os, shutil, signal, subprocess, sys, time, warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, needs_data, run_cli
from cryptoforecast.forecaster import RandomWalk

pytestmark = needs_data

CUT = '2025-10-31'          # the model sees data up to this day; the replay runs after it
COIN = 'BTC'


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


def test_forecast_cli(trained, universe, tmp_path, capsys):
    art, _ = trained
    dst = clone(art, tmp_path / 'cli')
    _clear_mlflow_env()
    args = ('forecast', '--crypto', COIN, '--as-of', '2025-11-05', '--artifacts-dir', dst, '--data-dir', DATA_DIR)
    first = run_cli(*args)
    assert first.returncode == 0 and 'not out of sample' not in first.stderr, first.stderr[-2000:]
    assert 'warning' not in first.stderr, first.stderr[-2000:]                # the data cut on --as-of are up to date
    import sqlite3
    count = lambda: sqlite3.connect(dst / 'forecasts.sqlite').execute('select count(*) from forecasts').fetchone()[0]
    assert count() == 6
    # printed as prices: per alias and horizon the median and the 80% and 95% bounds of the stored quantiles
    from cryptoforecast import live
    stored = live.read_forecasts(dst / 'forecasts.sqlite', COIN, 'champion').sort_values('horizon')
    assert stored['in_sample'].tolist() == [0, 0, 0]                        # v1 saw data up to CUT, before the origin
    head = (f"BTC champion and challenger v1 ({stored['model'].iloc[0]}): origin 2025-11-05, "   # one version: one block
            f"close {live.price_text(stored['close_origin'].iloc[0])}")
    assert head in first.stdout, first.stdout
    for h, row in zip((1, 7, 30), stored.to_dict('records')):
        price = lambda q: live.price_text(row['close_origin'] * np.exp(row[q]))
        line = next(l for l in first.stdout.splitlines() if l.strip().startswith(f"{h} d "))
        # horizon, 'd', target, median, then the 80% and the 95% bounds, each pair as 'low - high'
        cells = line.split()
        assert cells[3:] == [price(q) if q != '-' else q for q in ('q0.5', 'q0.1', '-', 'q0.9', 'q0.025', '-', 'q0.975')], line
    assert 'stored 6 new rows in' in first.stdout, first.stdout
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
    assert 'trained on data up to 2025-10-31, after the origin 2025-10-01' in capsys.readouterr().err   # in-sample: said so
    early = live.read_forecasts(dst / 'forecasts.sqlite', COIN)
    assert early.loc[early['origin'] == '2025-10-01', 'in_sample'].tolist() == [1] * 6    # and stored so: no track record
    assert early.loc[early['origin'] == '2025-11-05', 'in_sample'].tolist() == [0] * 6
    # without --as-of: today is later than the data's last day by more than --max-age: one warning line per coin
    last = universe[COIN].index[-1]
    age = (pd.Timestamp.now(tz='UTC').normalize() - last).days
    argv = ['forecast', '--crypto', COIN, '--alias', 'champion', '--artifacts-dir', str(dst), '--data-dir', str(DATA_DIR)]
    assert main(argv) == 0
    warned = [l for l in capsys.readouterr().err.splitlines() if 'warning' in l]
    if age > 3: assert warned == [f"BTC: warning: its data end on {last.date()}, {age} days before "
                                  f"{pd.Timestamp.now(tz='UTC').date()} (more than 3): the forecast is from {last.date()}'s prices; "
                                  "update the data folder"], warned
    assert main([*argv, '--max-age', str(age)]) == 0 and 'warning' not in capsys.readouterr().err


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


START = '2025-06-01'     # the 180-day replays: June to November 2025, after a model trained to the day before
LONG = 180
PLANT_AFTER = 60         # the planted drift: BTC's daily returns x 3 from the 60th replayed day on
FLAG_WITHIN = 21         # the days the monitor may take to flag it (measured: 14, by the volatility check)


@pytest.fixture(scope='module')
def small_universe(universe):
    "BTC and the first nine other coins by name: the market context of the long replays (ten coins build it ten times faster)."
    names = ['BTC'] + [c for c in sorted(universe) if c != 'BTC'][:9]
    return {c: universe[c] for c in names}


def day_before(day: str) -> str: return str((pd.Timestamp(day) - pd.Timedelta(days=1)).date())


@pytest.fixture(scope='module')
def trained_june(tmp_path_factory, small_universe):
    "Artifacts folder with BTC v1 (naive, drift, LightGBM) trained on the small universe up to the day before START."
    from cryptoforecast import live
    art = tmp_path_factory.mktemp('live-june')
    _use(art)
    r = live.retrain(COIN, small_universe, day_before(START), art)
    assert r['version'] == 1 and r['data_last'] == day_before(START)
    return art


def _replay_into(art: Path, universe: dict) -> pd.DataFrame:
    "The 180-day replay into `art`, in a process of its own (the plain and the planted replays run side by side)."
    from cryptoforecast import live
    _clear_mlflow_env()   # the parent's store is in the inherited environment; `replay` opens `art`'s
    return live.replay(COIN, START, LONG, universe, art)


def test_replay_180_days_flags_a_planted_volatility_drift_and_not_the_real_data(trained_june, small_universe, tmp_path):
    from cryptoforecast import live
    first = live.as_of_day(START)
    planted_on = first + pd.Timedelta(days=PLANT_AFTER)
    wild = {**small_universe, COIN: live.plant_volatility(small_universe[COIN], planted_on, 3)}   # BTC's volatility x 3
    a, b = clone(trained_june, tmp_path / 'plain'), clone(trained_june, tmp_path / 'planted')
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context('spawn')) as pool:
        plain, planted = [job.result() for job in [pool.submit(_replay_into, a, small_universe), pool.submit(_replay_into, b, wild)]]
    _use(a)
    stored = live.read_forecasts(live.store_path(a))
    # every day's forecasts stored exactly once: two aliases x three horizons
    assert plain['inserted'].tolist() == [6] * LONG
    assert len(stored) == 6 * LONG and not stored.duplicated(['origin', 'horizon', 'alias']).any()
    assert stored['origin'].nunique() == LONG and stored['origin'].max() == first + pd.Timedelta(days=LONG - 1)
    assert (plain['alerts'] == '').all(), plain[plain['alerts'] != '']          # the real half-year raises nothing
    # the monitor's relative MAE of the champion's 1-day forecasts, recomputed by hand from the store and the prices
    last = first + pd.Timedelta(days=LONG - 1)
    table = live.monitor(small_universe, live.store_path(a), [COIN], last, 60)
    close = small_universe[COIN]['close']
    g = stored[(stored['alias'] == 'champion') & (stored['horizon'] == 1) & (stored['origin'] < last)].iloc[-60:]
    y = np.log(close.reindex(g['origin'] + pd.Timedelta(days=1)).to_numpy() / g['close_origin'].to_numpy())
    row = table[(table['alias'] == 'champion') & (table['horizon'] == 1)].iloc[0]
    assert row['n'] == 60
    np.testing.assert_allclose(row['rel_mae'], np.mean(np.abs(y - g['mean'].to_numpy())) / np.mean(np.abs(y)), rtol=1e-10)
    assert 0 < row['cov80_lo'] < row['exp_cov80'] < row['cov80_hi'] <= 1 and 0 < row['vol_ratio'] < 1
    assert np.isfinite(row['psi']) == bool(live.top_features(live.load_version(COIN, 1)))   # baselines use no features
    # the same half-year with BTC's volatility tripled from the 60th day on
    flagged = planted[planted['alerts'] != '']
    assert len(flagged) and flagged['day'].min() >= planted_on, flagged.head()
    assert (flagged['day'].min() - planted_on).days <= FLAG_WITHIN, flagged.head()
    assert 'volatility' in flagged['alerts'].iloc[0]
    # and it stays flagged: 86% of the days since the first flag, measured with the pooled, weekday-aware sigma (whose
    # pooled HAR follows a volatility shift faster than the old per-coin combination did, which stayed flagged 92%)
    assert len(flagged) >= 0.8 * (last - flagged['day'].min()).days
    # a future perturbation: what was forecast before the drift began does not change
    s2 = live.read_forecasts(live.store_path(b))
    m = stored.merge(s2, on=['origin', 'horizon', 'alias', 'model_version'], suffixes=('', '_p'))
    early, late = m[m['origin'] < planted_on], m[m['origin'] >= planted_on]
    assert len(early) == 6 * PLANT_AFTER
    for c in ('mean', 'q0.05', 'q0.95', 'sigma', 'close_origin'):
        np.testing.assert_array_equal(early[c].to_numpy(), early[f'{c}_p'].to_numpy(), err_msg=c)
    assert not np.allclose(late['sigma'], late['sigma_p'])                  # the drift is seen once it is known
    pd.testing.assert_frame_equal(plain[plain['day'] < planted_on], planted[planted['day'] < planted_on])


class Chaser(RandomWalk):
    "A truly worse forecaster: twice the last h-day log return as the forecast, the random walk's spread around it."
    name = 'chaser'

    def _predict(self, fold, part):
        origins = self.origins(fold, part)
        log_close = np.log(fold.frame['close'])
        past = np.column_stack([(log_close - log_close.shift(h)).reindex(origins).to_numpy() for h in self.horizons])
        _, q = super()._predict(fold, part)
        point = 2 * np.nan_to_num(past)
        return point, q + point[..., None]


@pytest.fixture(scope='module')
def chaser():
    "The model name `chaser`, registered for this module's tests only."
    from cryptoforecast.forecaster import MODELS, register_model
    register_model('chaser', f'{__name__}:Chaser')
    yield 'chaser'
    MODELS.pop('chaser')


def test_live_evidence_promotes_a_better_challenger_keeps_a_worse_one_and_rollback_restores(small_universe, chaser, tmp_path):
    from mlflow import MlflowClient
    from cryptoforecast import live
    art = tmp_path / 'cc'
    _use(art)
    first, client = live.as_of_day(START), MlflowClient()
    champion = lambda: int(client.get_model_version_by_alias('cryptoforecast-BTC', 'champion').version)
    v1 = live.retrain(COIN, small_universe, day_before(START), art, models=('naive', chaser))
    assert v1['version'] == 1 and v1['headline'] == chaser
    # a better challenger: naive, drift and LightGBM retrained on day 24, in shadow until the realised errors decide
    log = live.replay(COIN, START, 48, small_universe, art, retrain_every=24)
    assert log['event'].iloc[24].startswith('retrained v2'), log
    moved = log[log['event'].str.contains('promoted')]
    assert moved['event'].str.contains('promoted v2').tolist() == [True] and moved['day'].iloc[0] > log['day'].iloc[24]
    assert champion() == 2
    store = live.store_path(art)
    ev = json.loads(live.champion_moves(store, COIN)['evidence'].iloc[-1])['evidence']
    assert ev['p'] < live.PROMOTE_ALPHA and ev['n'] >= 30 and ev['challenger_rel_mae'] < ev['champion_rel_mae']
    # a worse challenger: the chaser again, trained on the data of day 47, in shadow for 40 days: never promoted
    v3 = live.retrain(COIN, small_universe, first + pd.Timedelta(days=47), art, models=('naive', chaser))
    assert v3['version'] == 3 and champion() == 2
    later = live.replay(COIN, first + pd.Timedelta(days=48), 40, small_universe, art, try_promotion=True)
    assert not later['event'].str.contains('promoted').any() and champion() == 2, later
    kept = live.promote(COIN, small_universe, store, as_of=later['day'].iloc[-1])
    assert not kept['promoted'] and kept['evidence']['n'] >= 60
    assert kept['evidence']['challenger_rel_mae'] > kept['evidence']['champion_rel_mae']
    assert client.get_model_version('cryptoforecast-BTC', '3').tags['shadow.decision'] == 'kept in shadow'
    # rollback: the champion before the last move comes back
    back = live.rollback(COIN, store)
    assert back['champion'] == 1 and champion() == 1
    assert live.champion_moves(store, COIN)['action'].tolist() == ['retrain', 'promote', 'rollback']   # v1: the first champion
    with pytest.raises(live.UserError, match='no champion move left to undo'): live.rollback(COIN, store)   # never back to v2


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
    # the 30-day forecasts of origins up to 2025-11-15 are realised: 16, fewer than min_n, so not judged
    h30 = table[table['horizon'] == 30].iloc[0]
    assert h30['n'] == 16 and h30['status'] == 'insufficient' and h30['alerts'] == ''
    assert h30['verdict'] == 'not enough realised forecasts (16 of 20)'
    assert [r['status'] for r in report['rows']] == table['status'].tolist() and report['statuses']['insufficient'] >= 1
    assert h1['status'] == ('alert' if h1['alerts'] else 'ok')
    assert (a / 'monitor' / 'index.md').read_text() == (a / 'monitor' / '2025-12-15.md').read_text()
    from cryptoforecast.site import build_site   # the report page in the site
    site = build_site(tmp_path / 'site', tmp_path / 'no-runs', tmp_path / 'no-docs', execute=False, monitor_dir=a / 'monitor')
    page = (tmp_path / 'site' / 'monitor.html').read_text()
    assert '<h1>Monitoring, 2025-12-15</h1>' in page and page.count('<tr class=') == len(table)
    assert 'href="monitor.html"' in site.index.read_text()
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
