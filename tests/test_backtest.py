"""The walk-forward harness end to end on real data: no leakage, determinism, the CLI."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoforecast.backtest import run_backtest
from cryptoforecast.calibration import calibrate_pooled
from cryptoforecast.data import load_universe
from cryptoforecast.metrics import QUANTILE_COLS, validate_predictions
from conftest import DATA_DIR, needs_data, run_cli

MODELS = ('naive', 'drift', 'arima', 'lightgbm', 'lightgbm_global')
COINS = ['BTC', 'ETH', 'LTC']
FOLDS = dict(n_folds=3, test_size=60, val_size=60, min_train=300)

@pytest.fixture(scope='module')
def universe(tmp_path_factory):
    if not DATA_DIR.exists(): pytest.skip('no real data')
    u = load_universe(DATA_DIR, cache_dir=tmp_path_factory.mktemp('cache'))
    # the three coins and a few others for the market index, ending on the same day
    keep = [s for s, df in u.items() if df.index[-1] == u['BTC'].index[-1]][:8]
    return {s: u[s] for s in sorted(set(keep) | set(COINS))}

@needs_data
def test_no_leakage_through_the_whole_harness(universe):
    "Perturbing every price after T leaves every prediction with origin <= T - embargo unchanged."
    base, _ = run_backtest(COINS, MODELS, seed=7, progress=False, universe=universe, **FOLDS)
    end = universe['BTC'].index[-1]
    T = end - pd.Timedelta(days=100)  # inside the test parts of the last folds
    rng = np.random.default_rng(0)
    perturbed = {}
    for s, df in universe.items():
        df = df.copy()
        after = df.index > T
        factor = np.exp(rng.normal(0, 0.2, after.sum()))
        for c in ('open', 'high', 'low', 'close'): df.loc[after, c] = df.loc[after, c] * factor
        df.loc[after, 'volume'] = df.loc[after, 'volume'] * rng.uniform(0.2, 5, after.sum())
        df.attrs = universe[s].attrs
        perturbed[s] = df
    pert, _ = run_backtest(COINS, MODELS, seed=7, progress=False, universe=perturbed, **FOLDS)
    embargo = 30
    key = ['coin', 'model', 'horizon', 'origin', 'fold']
    early = lambda p: p[p['origin'] <= T - pd.Timedelta(days=embargo)].sort_values(key).reset_index(drop=True)
    a, b = early(base), early(pert)
    assert len(a) > 1000 and set(a['model']) == set(MODELS)
    cols = ['mean', 'point', 'sigma', *QUANTILE_COLS]   # the calibrated quantiles, pooled across coins, included
    pd.testing.assert_frame_equal(a[key + cols], b[key + cols], check_exact=True)
    # the check can fail: predictions after T do change
    late = lambda p: p[(p['origin'] > T) & (p['model'] == 'lightgbm')].sort_values(key)['mean'].to_numpy()
    assert not np.allclose(late(base), late(pert))

@needs_data
def test_same_seed_same_prediction_file(tmp_path):
    args = ['backtest', '--coins', 'ETH,LTC', '--models', 'naive,drift,arima,lightgbm', '--folds', '2', '--test-size', '60',
            '--data-dir', DATA_DIR, '--seed', '3']
    r1 = run_cli(*args, '--out', tmp_path/'a.parquet', cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    r2 = run_cli(*args, '--jobs', '2', '--out', tmp_path/'b.parquet', cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    a, b = pd.read_parquet(tmp_path/'a.parquet'), pd.read_parquet(tmp_path/'b.parquet')
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path/'a.parquet').read_bytes() == (tmp_path/'b.parquet').read_bytes()
    assert 'rel_mae' in r1.stdout and 'lightgbm' in r1.stdout
    # a different seed changes LightGBM's numbers (the test can fail)
    r3 = run_cli(*args[:-1], '9', '--out', tmp_path/'c.parquet', cwd=tmp_path)
    c = pd.read_parquet(tmp_path/'c.parquet')
    lg = lambda p: p[p['model'] == 'lightgbm']['mean'].to_numpy()
    assert not np.array_equal(lg(a), lg(c))

def test_backtest_cli_rejects_unknown_model(tmp_path):
    r = run_cli('backtest', '--coins', 'BTC', '--models', 'naive,prophet', cwd=tmp_path)
    assert r.returncode == 2 and "argument --models: unknown model 'prophet'; choose from naive" in r.stderr, r.stderr

@needs_data
def test_pooled_calibration_shrinks_and_stays_valid(universe):
    "Point models' means are shrunk toward the random walk by a factor in [0, 1]; pooled and per-coin calibrations differ."
    models = ('naive', 'drift', 'lightgbm')
    pooled, _ = run_backtest(COINS, models, seed=7, progress=False, universe=universe, **FOLDS)
    coin, _ = run_backtest(COINS, models, seed=7, progress=False, universe=universe, calibration='coin', **FOLDS)
    for p in (pooled, coin):
        validate_predictions(p)
        assert 'part' not in p and p['sigma'].gt(0).all()
    point = pooled[pooled['model'] != 'naive']
    assert point['shrink'].between(0, 1).all() and pooled.loc[pooled['model'] == 'naive', 'shrink'].isna().all()
    np.testing.assert_allclose(point['mean'], point['shrink'] * point['point'])
    key = ['coin', 'model', 'horizon', 'origin', 'fold']
    a = pooled.sort_values(key).reset_index(drop=True)
    b = coin.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[a.model == 'naive'][list(QUANTILE_COLS)], b[b.model == 'naive'][list(QUANTILE_COLS)])  # own quantiles
    assert not np.allclose(a[a.model == 'lightgbm']['q0.9'], b[b.model == 'lightgbm']['q0.9'])
    with pytest.raises(ValueError, match='calibration'): run_backtest(COINS, models, universe=universe, calibration='none')
    # the raw frame, calibrated afterwards, is the pooled result: a calibration study need not re-run the models
    raw, _ = run_backtest(COINS, models, seed=7, progress=False, universe=universe, calibration='raw', **FOLDS)
    assert set(raw['part']) == {'val', 'test'} and len(raw[raw['part'] == 'test']) == len(pooled)
    again = calibrate_pooled(raw, ['drift', 'lightgbm']).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(again[a.columns], a, check_exact=True)

def test_backtest_cli_rejects_unknown_calibration(tmp_path):
    r = run_cli('backtest', '--coins', 'BTC', '--calibration', 'global', cwd=tmp_path)
    assert r.returncode == 2 and 'argument --calibration' in r.stderr and r.stderr.count('\n') == 1, r.stderr

@needs_data
def test_zero_shot_global_model_never_trains_on_the_left_out_coin(universe):
    "With train_coins, the left-out coin's rows are zero-shot, and changing its history changes nothing the model learnt."
    kw = dict(seed=7, progress=False, **FOLDS)
    train = [c for c in universe if c != 'LTC']
    base, _ = run_backtest(COINS, ('naive', 'lightgbm_global'), universe=universe, train_coins=train, **kw)
    g = base[base['model'] == 'lightgbm_global']
    assert g.loc[g['coin'] == 'LTC', 'zero_shot'].all() and not g.loc[g['coin'] != 'LTC', 'zero_shot'].any()
    assert not base.loc[base['model'] == 'naive', 'zero_shot'].any()
    # evaluating LTC or not changes nothing the model learnt: the other coins' forecasts are the same without it
    alone, _ = run_backtest(['BTC', 'ETH'], ('naive', 'lightgbm_global'), universe=universe, train_coins=train, **kw)
    key = ['coin', 'model', 'horizon', 'origin', 'fold']
    trees = lambda p: p[(p['coin'] != 'LTC') & (p['model'] == 'lightgbm_global')].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(trees(base)[key + ['point', 'sigma']], trees(alone)[key + ['point', 'sigma']])
    # and training on LTC too does change them (the check can fail)
    seen, _ = run_backtest(['BTC', 'ETH'], ('naive', 'lightgbm_global'), universe=universe, train_coins=train + ['LTC'], **kw)
    assert not np.allclose(trees(seen)['point'], trees(alone)['point'])

@needs_data
def test_rare_cutoff_borrows_a_fit_and_the_global_ensemble_trains_nothing_twice(universe, monkeypatch):
    """Five coins share their cut-offs; a sixth, its data cut 40 days short, borrows the latest large fit that started
    testing before it (zero-shot) instead of a fit of its own. The global ensemble reuses the global LightGBM fitted for
    each cut-off, and perturbing every price after T changes no forecast with origin <= T - embargo."""
    from cryptoforecast.lightgbm import GlobalLightGBM
    same_end = [s for s in universe if universe[s].index[-1] == universe['BTC'].index[-1]]
    assert len(same_end) >= 6
    coins, short = same_end[:5], same_end[5]
    u = dict(universe)
    u[short] = universe[short].iloc[:-40].copy(); u[short].attrs = universe[short].attrs
    models = ('naive', 'lightgbm_global', 'ensemble_global')
    kw = dict(seed=7, progress=False, model_kwargs={'ensemble_global': dict(members=('naive', 'drift', 'lightgbm_global'))}, **FOLDS)
    calls = []
    real_fit = GlobalLightGBM.fit_many
    monkeypatch.setattr(GlobalLightGBM, 'fit_many', lambda self, folds: calls.append(len(folds)) or real_fit(self, folds))
    base, _ = run_backtest(coins + [short], models, universe=u, **kw)
    assert calls == [1, 5, 5, 5]   # the short coin's first fold alone (no earlier large fit), then one fit per shared cut-off
    g = base[base['model'] == 'lightgbm_global']
    folds_zero_shot = g[g['coin'] == short].groupby('fold')['zero_shot'].all()
    assert not folds_zero_shot.iloc[0] and folds_zero_shot.iloc[1:].all() and not g.loc[g['coin'] != short, 'zero_shot'].any()
    assert set(base['model']) == set(models)
    T = u['BTC'].index[-1] - pd.Timedelta(days=100)
    rng = np.random.default_rng(1)
    pert = {}
    for s, df in u.items():
        df = df.copy(); after = df.index > T
        for c in ('open', 'high', 'low', 'close'): df.loc[after, c] = df.loc[after, c] * np.exp(rng.normal(0, 0.2, after.sum()))
        df.attrs = u[s].attrs; pert[s] = df
    other, _ = run_backtest(coins + [short], models, universe=pert, **kw)
    key = ['coin', 'model', 'horizon', 'origin', 'fold']
    early = lambda p: p[p['origin'] <= T - pd.Timedelta(days=30)].sort_values(key).reset_index(drop=True)
    cols = ['mean', 'point', 'sigma', *QUANTILE_COLS]
    assert early(base)['coin'].eq(short).sum() > 100
    pd.testing.assert_frame_equal(early(base)[key + cols], early(other)[key + cols], check_exact=True)
    late = lambda p: p[(p['origin'] > T) & (p['model'] == 'ensemble_global')].sort_values(key)['point'].to_numpy()
    assert not np.allclose(late(base), late(other))

SAMPLE = Path(__file__).resolve().parents[1]/'cryptoforecast'/'sample'
QUICK = ['backtest', '--coins', 'BTC', '--models', 'naive,drift', '--folds', '1', '--test-size', '30', '--data-dir', SAMPLE]

def on_a_terminal(args, cwd, env: dict, timeout: float = 300) -> tuple[int, str, str]:
    "Run the CLI with stderr on a pseudo-terminal and stdout piped; returns the exit code, what the terminal got, and stdout."
    import os, pty, select, subprocess, sys, time
    exe = Path(sys.executable).parent/'cryptoforecast'
    import fcntl, struct, termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 24, 120, 0, 0))   # a new pty is 0 columns wide: bars would be empty
    p = subprocess.Popen([str(exe), *map(str, args)], stdout=subprocess.PIPE, stderr=slave, cwd=cwd, env={**os.environ, **env})
    os.close(slave)
    shown, deadline = b'', time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 1)[0]: continue
            try: chunk = os.read(master, 65536)
            except OSError: break   # the child closed the terminal
            if not chunk: break
            shown += chunk
    finally:
        os.close(master)
        if p.poll() is None and time.monotonic() >= deadline: p.kill()
    out = p.communicate(timeout=60)[0].decode()
    return p.returncode, shown.decode(errors='replace'), out

def test_backtest_shows_progress_on_a_terminal_and_is_quiet_when_piped(tmp_path):
    env = {'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache')}
    code, shown, out = on_a_terminal(QUICK, tmp_path, env)
    assert code == 0 and 'median over coins' in out, shown + out
    assert 'coins' in shown and 'BTC naive fold 1/1' in shown and 'BTC drift fold 1/1' in shown, shown   # per coin, model and fold
    r = run_cli(*QUICK, cwd=tmp_path, env=env)
    assert r.returncode == 0 and 'median over coins' in r.stdout, r.stderr
    assert '\r' not in r.stderr and 'fold 1/1' not in r.stderr, r.stderr   # piped: no bar

def test_backtest_out_that_is_a_folder_is_refused_before_any_work(tmp_path):
    r = run_cli(*QUICK, '--out', tmp_path, cwd=tmp_path, env={'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache')})
    assert r.returncode == 2 and r.stdout == '', r.stdout + r.stderr
    assert r.stderr.count('\n') == 1 and r.stderr.startswith('error: cryptoforecast backtest: argument --out:') and 'is a folder' in r.stderr
    assert not (tmp_path/'cache').exists(), 'no data was read'
