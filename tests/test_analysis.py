"""`cryptoforecast analyze` on a few real coins writes its tables, plots and summary, with numbers that agree with
the files; bad input (an unknown coin, a folder without price files, a bad argument) is one line and exit code 2."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, needs_data, run_cli

COINS = 'BTC,ETH,LTC,XRP,ADA'
FILES = ['coin_stats.csv', 'correlation.csv', 'pca_explained.csv', 'pca_loadings.csv', 'clusters.csv', 'summary.json',
         'risk_return.png', 'correlation.png', 'dendrogram.png', 'pca.png']

@pytest.fixture(scope='module')
def analysed(tmp_path_factory):
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    out = tmp_path_factory.mktemp('analysis')
    r = run_cli('analyze', '--data-dir', DATA_DIR, '--coins', COINS, '--out', out, '--window', '365', '--clusters', '2',
                timeout=300)
    assert r.returncode == 0, r.stderr
    return out, r

@needs_data
def test_analyze_writes_every_file(analysed):
    out, r = analysed
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)   # no temporary file left behind
    for png in out.glob('*.png'): assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 5000
    assert 'analysed 5 coins' in r.stdout and 'PC1 explains' in r.stdout

@needs_data
def test_analyze_numbers_agree_with_the_data(analysed):
    from cryptoforecast.data import load_universe
    out, _ = analysed
    stats = pd.read_csv(out/'coin_stats.csv').set_index('coin')
    assert sorted(stats.index) == sorted(COINS.split(','))
    btc = load_universe(DATA_DIR, symbols=['BTC'])['BTC']['close']
    r = np.log(btc / btc.shift(1)).dropna()
    assert stats.loc['BTC', 'ann_vol'] == pytest.approx(r.std() * np.sqrt(365), rel=1e-9)
    assert stats.loc['BTC', 'beta_btc'] == pytest.approx(1.0) and stats.loc['BTC', 'corr_btc'] == pytest.approx(1.0)
    assert stats.loc['BTC', 'var99'] > stats.loc['BTC', 'var95'] > 0 and (stats['es95'] >= stats['var95']).all()
    assert (stats['max_drawdown'].between(0.3, 1.0)).all()       # every one of these fell by a third or more
    assert (stats['corr_btc'].drop('BTC') > 0.3).all() and (stats['beta_index'] > 0).all()
    assert (stats['sharpe_lo'] < stats['sharpe']).all() and (stats['sharpe'] < stats['sharpe_hi']).all()
    s = json.loads((out/'summary.json').read_text())
    assert s['common_period']['days'] == 365 and s['common_period']['coins'] == 5
    assert s['pca']['pc1_same_sign'] and 0.5 < s['pca']['explained'][0] < 1
    ex = pd.read_csv(out/'pca_explained.csv')
    assert ex['explained'].sum() == pytest.approx(1.0) and ex['explained'].is_monotonic_decreasing
    corr = pd.read_csv(out/'correlation.csv').set_index('coin')
    assert np.allclose(np.diag(corr.to_numpy()), 1.0) and np.allclose(corr.to_numpy(), corr.to_numpy().T)

@needs_data
def test_analyze_refuses_an_unknown_coin(tmp_path):
    r = run_cli('analyze', '--data-dir', DATA_DIR, '--coins', 'BTC,NOSUCHCOIN', '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'NOSUCHCOIN' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and not (tmp_path/'o').exists()

def test_analyze_refuses_an_empty_folder_and_bad_arguments(tmp_path):
    empty = tmp_path/'empty'; empty.mkdir()
    r = run_cli('analyze', '--data-dir', empty, '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.startswith('error:') and r.stderr.count('\n') == 1, r.stderr
    assert 'no price files' in r.stderr and not (tmp_path/'o').exists()
    for bad in (['--window', '0'], ['--coins', '../x'], ['--seed', '-1'], ['--data-dir', tmp_path/'nowhere'], ['--window', '7']):
        r = run_cli('analyze', '--data-dir', empty, *bad) if bad[0] != '--data-dir' else run_cli('analyze', *bad)
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, (bad, r.stderr)
