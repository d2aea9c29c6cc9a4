"""`cryptoforecast batch` on real data: parallel reports with HTML, resume, a failing coin isolated, the Dask engine."""
import io, json, os, re, shutil, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoforecast.batch import RunFiles, coin_sources, read_json, run_batch
from cryptoforecast.plots import PLOT_NAMES
from conftest import DATA_DIR, ROOT, data_dir_with_broken_coin, needs_data, run_cli

pytestmark = [needs_data, pytest.mark.slow]

def statuses(stdout: str) -> dict:
    "coin -> status from the batch table the CLI prints."
    rows = [l.split() for l in stdout.splitlines()]
    return {r[0]: r[1] for r in rows if len(r) >= 2 and r[1] in ('ok', 'skipped', 'failed')}

@pytest.fixture(scope='module')
def broken_data_dir(tmp_path_factory) -> Path:
    return data_dir_with_broken_coin(tmp_path_factory.mktemp('broken-data'))

# the training in the reports uses the cheap models here (the deep ones cost minutes per coin on this CPU);
# the failure, skip and engine tests need no training at all
LIGHT = ['-p', 'models', 'naive,drift,lightgbm']
DATA_ONLY = ['-p', 'train', 'false']

@pytest.fixture(scope='module')
def btc_eth(tmp_path_factory):
    "BTC and ETH reported (and trained with the cheap models) by the CLI in two processes."
    out = tmp_path_factory.mktemp('runs')
    r = run_cli('batch', '--crypto', 'BTC,ETH', '--jobs', '2', '--data-dir', DATA_DIR, '--out', out, *LIGHT,
                '-p', 'artifacts_dir', out/'artifacts', cwd=ROOT, env={'MLFLOW_TRACKING_URI': ''})
    return out, r

def test_batch_makes_reports_and_html(btc_eth):
    out, r = btc_eth
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(r.stdout) == {'BTC': 'ok', 'ETH': 'ok'}, r.stdout
    sources = coin_sources(DATA_DIR)
    for coin in ('BTC', 'ETH'):
        f = RunFiles.of(out, coin)
        for p in (f.notebook, f.html, f.summary, f.meta): assert p.exists(), p
        s = read_json(f.summary)
        assert s['status'] == 'ok' and s['coin'] == coin
        assert s['data_hash'] == sources[coin].sha256
        assert {'rel_mae_1', 'rel_mae_7', 'rel_mae_30'} <= set(s) and s['trained']
        assert all(0 < s[f'rel_mae_{h}'] < 3 for h in (1, 7, 30)), s  # the report carries the run's skill
        # papermill's `python3` kernel is this environment's interpreter
        assert Path(s['python']).parent == Path(sys.executable).parent, s['python']
        nb = json.loads(f.notebook.read_text())
        assert any('parameters' in c['metadata'].get('tags', []) for c in nb['cells'])
        assert any('injected-parameters' in c['metadata'].get('tags', []) for c in nb['cells'])
        assert f'"{coin} forecast report"' in ''.join(nb['cells'][0]['source'])  # front matter for the listing
        html = f.html.read_text()
        assert f"{coin} daily close" in html and 'Plotly.newPlot' in html  # PLOTLY_RENDERER=notebook: plotly.js inline
        # what the template promises: skill against the random walk, the fan chart, regime, features, the plots, SHAP
        for text in ('Models against the random walk', 'forecast for 30 day(s)', 'volatility', 'Feature highlights',
                     'model comparison', 'training summary', 'SHAP: lightgbm h7'):
            assert text in html, text
        assert html.count('data:image/png') >= len(PLOT_NAMES) + 3, 'every diagnostic plot and three SHAP summaries, embedded'
        assert 'description: "ok; relative MAE' not in html and 'absl::' not in html   # no front matter, no TensorFlow chatter
        assert f'<h1 id="{coin}-forecast-report">{coin} forecast report' in html and 'Per-coin forecast report' not in html
        assert not re.search(r'<script[^>]*\bsrc="https?://', html)   # no require.js or MathJax from a CDN: renders offline
        cells = re.findall(r'<td>([^<]*)</td>', html)
        assert not [c for c in cells if re.fullmatch(r'-?[\d.]+e[-+]\d+', c.strip())], 'no number in an exponent'
        assert re.search(r'<td>\d{1,3}(,\d{3})+</td>', html) if coin == 'BTC' else True   # prices: thousands separated
    table = pd.read_csv(out/'batch_summary.csv')
    assert list(table.coin) == ['BTC', 'ETH'] and set(table.status) == {'ok'}

def test_rerun_skips_up_to_date_reports(btc_eth):
    out, _ = btc_eth
    before = {p.name: p.stat().st_mtime for p in out.iterdir() if p.suffix in ('.ipynb', '.html')}
    r = run_cli('batch', '--crypto', 'BTC,ETH', '--jobs', '2', '--data-dir', DATA_DIR, '--out', out, *LIGHT,
                '-p', 'artifacts_dir', out/'artifacts', cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert statuses(r.stdout) == {'BTC': 'skipped', 'ETH': 'skipped'}, r.stdout
    assert {p.name: p.stat().st_mtime for p in out.iterdir() if p.suffix in ('.ipynb', '.html')} == before

def test_failing_coin_fails_alone(broken_data_dir, tmp_path):
    r = run_cli('batch', '--crypto', 'ETH,XYZ', '--jobs', '2', '--data-dir', broken_data_dir, '--out', tmp_path, *DATA_ONLY, cwd=ROOT)
    assert r.returncode == 1, r.stdout + r.stderr
    assert statuses(r.stdout) == {'ETH': 'ok', 'XYZ': 'failed'}, r.stdout
    assert 'XYZ: UserError: XYZ: no usable price data' in r.stdout and 'negative price on 2022-02-20' in r.stdout
    failed = RunFiles.of(tmp_path, 'XYZ')
    nb = json.loads(failed.notebook.read_text())  # the failed notebook stays, the error in place
    assert any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))
    assert failed.html.exists() and read_json(failed.summary)['status'] == 'failed'
    assert read_json(RunFiles.of(tmp_path, 'ETH').summary)['status'] == 'ok'
    # the failed coin is run again next time, the good one is not
    t = run_batch(['ETH', 'XYZ'], params={'train': False}, out_dir=tmp_path, data_dir=broken_data_dir, progress=False)
    assert list(t.status) == ['skipped', 'failed']

def test_unknown_coin_is_refused_before_running(broken_data_dir, tmp_path):
    r = run_cli('batch', '--crypto', 'ETH,NOPE', '--data-dir', broken_data_dir, '--out', tmp_path, cwd=ROOT)
    assert r.returncode == 2 and 'error: no data for NOPE' in r.stderr, r.stderr
    assert not list(tmp_path.glob('*.ipynb'))

def test_dask_engine_on_a_local_cluster(broken_data_dir, tmp_path):
    distributed = pytest.importorskip('distributed')
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host='127.0.0.1',
                                  dashboard_address=None) as cluster:
        t = run_batch(['ETH', 'XYZ'], params={'seed': 3, 'train': False}, engine='dask', scheduler=cluster.scheduler_address,
                      out_dir=tmp_path, data_dir=broken_data_dir, progress=False)
    assert list(t.status) == ['ok', 'failed']
    assert 'negative price' in t.error[1]
    assert RunFiles.of(tmp_path, 'ETH').html.exists()
    assert read_json(RunFiles.of(tmp_path, 'ETH').meta)['params']['seed'] == 3

def test_dask_engine_from_the_cli(broken_data_dir, tmp_path):
    "`--engine dask` without a scheduler starts a local cluster of `--jobs` worker processes on 127.0.0.1."
    pytest.importorskip('distributed')
    r = run_cli('batch', '--crypto', 'XYZ', '--engine', 'dask', '--jobs', '2', '--epochs', '1', *DATA_ONLY,
                '--data-dir', broken_data_dir, '--out', tmp_path, cwd=ROOT)
    assert r.returncode == 1, r.stdout + r.stderr
    assert statuses(r.stdout) == {'XYZ': 'failed'} and 'negative price' in r.stdout, r.stdout
    meta = read_json(RunFiles.of(tmp_path, 'XYZ').meta)
    assert meta['status'] == 'failed' and meta['params']['epochs'] == 1

def test_progress_names_each_coin_on_a_terminal_and_is_quiet_otherwise(monkeypatch):
    "The bar on stderr says which coin finished and how; when stderr is no terminal (a log, CI) it prints nothing."
    from cryptoforecast import batch
    class Terminal(io.StringIO):
        def isatty(self): return True
    rows = [dict(coin='BTC', status='ok'), dict(coin='XYZ', status='failed')]
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, 'stderr', stream)
        assert list(batch._progress(iter(rows), len(rows))) == rows
        text = stream.getvalue()
        assert ('2/2' in text and 'XYZ failed' in text) if shown else text == '', text
