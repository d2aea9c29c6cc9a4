"""`cryptoforecast analyze` on a few real coins writes its tables, plots and summary into a folder of its own, with numbers
that agree with the files; bad input (an unknown coin, a folder without price files, a bad argument, a window longer than
the data, an --out that is a file) is one line and exit code 2."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import DATA_DIR, ROOT, needs_data, run_cli

SAMPLE = ROOT/'cryptoforecast'/'sample'

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
    return run_folder_of(r, out), r

def run_folder_of(r, out):
    "The one run folder under `out`, which the run's last line names."
    folders = list(out.iterdir())
    assert len(folders) == 1 and folders[0].is_dir(), folders      # nothing else, no temporary folder left behind
    assert r.stdout.strip().splitlines()[-1].endswith(str(folders[0])), r.stdout
    return folders[0]

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

def sample_run(tmp_path, *args):
    "`analyze` on three coins of the embedded sample (SOL only from 2020-08), with a cache of its own."
    return run_cli('analyze', '--data-dir', SAMPLE, '--coins', 'BTC,ETH,SOL', *args,
                   env={'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache')}, timeout=300)

def test_analyze_refuses_a_window_longer_than_the_data(tmp_path):
    for days in ('1000000', '100000'):
        r = sample_run(tmp_path, '--window', days, '--out', tmp_path/'o')
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
        assert f'--window {days}: longer than the data' in r.stderr, r.stderr
        assert not (tmp_path/'o').exists()

@pytest.mark.parametrize('out', ['FILE', 'FILE/sub'])
def test_analyze_refuses_an_out_that_is_a_file(tmp_path, out):
    (tmp_path/'file').write_text('keep me')
    r = run_cli('analyze', '--data-dir', SAMPLE, '--out', out.replace('FILE', str(tmp_path/'file')))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert 'argument --out' in r.stderr and 'is a file, not a folder' in r.stderr, r.stderr
    assert (tmp_path/'file').read_text() == 'keep me'

def test_each_analyze_run_writes_a_folder_of_its_own(tmp_path):
    """A run without the universe views (a common period longer than the coins share) beside one with them: neither
    mixes its files with the other's, so no PCA picture of an earlier run passes for this one's."""
    out = tmp_path/'out'
    full = sample_run(tmp_path, '--window', '365', '--out', out)
    assert full.returncode == 0, full.stderr
    first = run_folder_of(full, out)
    short = sample_run(tmp_path, '--window', '2500', '--out', out)
    assert short.returncode == 0, short.stderr
    second = [p for p in out.iterdir() if p != first]
    assert len(second) == 1 and short.stdout.strip().splitlines()[-1].endswith(str(second[0])), short.stdout
    assert (first/'pca.png').exists() and not (second[0]/'pca.png').exists()
    assert 'no PCA or clustering' in short.stdout
