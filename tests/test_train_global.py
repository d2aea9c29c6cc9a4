"""`cryptoforecast train` with global models on real data: one global fit for many coins, per-coin runs that the registry,
`batch`, `site` and the dashboard read like any other."""
import contextlib, io, json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoforecast.forecaster import model_class
from cryptoforecast.lightgbm import GlobalLightGBM
from cryptoforecast.train import train_cli
from conftest import DATA_DIR, ROOT, needs_data, run_cli

pytestmark = needs_data

COINS = ('BTC', 'ETH', 'LTC')
GLOBAL = 'lightgbm_global'

def only_run(art: Path, coin: str) -> Path:
    "The one finished run folder of `coin` under `art`."
    (run_dir,) = [p for p in (art/coin).iterdir() if p.name[0].isdigit()]
    return run_dir

def report_of(art: Path, coin: str) -> dict:
    return json.loads((only_run(art, coin)/'report.json').read_text())

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "BTC, ETH and LTC trained by `train_cli` in this process with the random walk and the global LightGBM, its fits counted."
    art = tmp_path_factory.mktemp('global')/'artifacts'
    fits = []
    real_fit_many = GlobalLightGBM.fit_many
    def counted(self, folds):
        fits.append(sorted(f.coin for f in folds))
        return real_fit_many(self, folds)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setenv('MLFLOW_TRACKING_URI', '')
        mp.setattr(GlobalLightGBM, 'fit_many', counted)
        rc = train_cli(['--crypto', ','.join(COINS), '--models', f'naive,{GLOBAL}', '--data-dir', str(DATA_DIR),
                        '--artifacts-dir', str(art), '--seed', '1', '--no-ensemble'])
    return art, rc, out.getvalue(), err.getvalue(), fits

def test_one_global_fit_per_coin_runs(trained):
    art, rc, out, err, fits = trained
    assert rc == 0, out + err
    assert fits == [sorted(COINS)], 'the global model is fitted once, on the three coins together'
    assert '3 ok, 0 skipped, 0 failed' in out
    reports = {c: report_of(art, c) for c in COINS}
    runs = {r['global']['run'] for r in reports.values()}
    assert len(runs) == 1, 'one global run id shared by the coins'
    for c, rep in reports.items():
        run_dir = only_run(art, c)
        assert rep['coin'] == c and rep['config']['models'] == ['naive', GLOBAL]
        g = rep['global']
        assert g['models'] == [GLOBAL] and g['coins'] == 3
        assert rep['evaluation']['split'].startswith('walk-forward 1 fold,'), 'the registry compares it with like runs only'
        # one cut-off for every coin: no coin's training rows reach past another coin's test start
        assert rep['folds'][-1]['train'][1] == g['cutoff'] and rep['folds'][-1]['test'][0] == g['test_start']
        assert set(pd.DataFrame(rep['metrics'])['model']) == {'naive', GLOBAL}
        for name in ('naive', GLOBAL): assert Path(rep['models'][name]).exists() and Path(rep['models'][name]).is_relative_to(run_dir)
        for f in ('forecast.parquet', 'predictions.parquet', 'model_card.md'): assert (run_dir/f).exists(), f
        assert len(list((run_dir/'plots').glob('*.png'))) >= 5
    assert len({r['global']['cutoff'] for r in reports.values()}) == 1

def test_saved_global_model_forecasts_its_coin(trained):
    "`load` + `predict_frame` on a bare feature frame gives the forecast the run stored, for each coin."
    from cryptoforecast.config import get_config
    from cryptoforecast.data import load_universe
    from cryptoforecast.features import build_features, market_context
    art = trained[0]
    u = load_universe(DATA_DIR)
    cfg = get_config()
    for c in COINS:
        rep = report_of(art, c)
        assert rep['headline']['model'] == GLOBAL
        m = model_class(GLOBAL).load(rep['models'][GLOBAL])
        frame = build_features(u[c], market=market_context(u), horizons=cfg.horizons).iloc[-(cfg.lookback + max(cfg.horizons)):]
        got = m.predict_frame(frame)
        got = got[got['origin'] == got['origin'].max()].reset_index(drop=True)
        stored = pd.read_parquet(only_run(art, c)/'forecast.parquet').reset_index(drop=True)
        assert (got['coin'] == c).all()
        pd.testing.assert_frame_equal(got, stored, check_dtype=False)

def test_mlflow_runs_share_the_global_run_and_each_coin_has_a_version(trained):
    import mlflow
    from mlflow import MlflowClient
    art = trained[0]
    reports = {c: report_of(art, c) for c in COINS}
    uri = reports['BTC']['mlflow']['tracking_uri']
    mlflow.set_tracking_uri(uri); mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = {c: client.get_run(r['mlflow']['run_id']).data.tags for c, r in reports.items()}
    assert {t['global_run'] for t in tags.values()} == {reports['BTC']['global']['run']}
    assert {t['coin'] for t in tags.values()} == set(COINS)
    for c in COINS:
        mv = client.get_model_version_by_alias(f'cryptoforecast-{c}', 'champion')
        assert str(mv.version) == '1' and mv.run_id == reports[c]['mlflow']['run_id']

def test_dashboard_reads_the_runs(trained):
    from cryptoforecast import dashboard as D
    art = trained[0]
    assert set(COINS) <= set(D.coins_with_runs(art))
    for c in COINS:
        run = D.latest_run(c, art)
        assert run.headline == GLOBAL and str(run.path) == str(only_run(art, c))
        assert set(D.model_forecasts(run)['horizon']) == {1, 7, 30}

@pytest.mark.slow
def test_batch_and_site_read_the_runs(trained, tmp_path):
    "`batch -p from_run true` reports the global runs without training again; `site` lists those reports."
    art = trained[0]
    out = tmp_path/'runs'
    r = run_cli('batch', '--crypto', 'BTC,ETH', '--data-dir', DATA_DIR, '--out', out, '-p', 'from_run', 'true',
                '-p', 'artifacts_dir', art, cwd=ROOT, env={'MLFLOW_TRACKING_URI': ''})
    assert r.returncode == 0, r.stdout + r.stderr
    for c in ('BTC', 'ETH'):
        s = json.loads((out/f'{c}.json').read_text())
        rep = report_of(art, c)
        assert s['status'] == 'ok' and s['trained'] and s['run_dir'] == str(only_run(art, c))
        assert s['rel_mae_7'] == pytest.approx(rep['headline']['rel_mae']['7'])
        assert 'global fit' in (out/f'{c}.html').read_text()
    assert [p.name for p in (art/'BTC').iterdir() if p.name[0].isdigit()] == [only_run(art, 'BTC').name], 'no new training run'
    site = tmp_path/'site'
    nbs = tmp_path/'nbs'
    nbs.mkdir()
    (nbs/'index.ipynb').write_bytes((ROOT/'nbs'/'index.ipynb').read_bytes())
    r = run_cli('site', '--out', site, '--runs', out, '--nbs', nbs, '--no-execute', cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    index = (site/'index.html').read_text()
    for c in ('BTC', 'ETH'): assert f'href="reports/{c}.html"' in index and (site/'reports'/f'{c}.html').exists()

def test_all_and_crypto_together_is_one_line_exit_2(tmp_path):
    r = run_cli('train', '--all', '--crypto', 'BTC', '--models', f'naive,{GLOBAL}', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'not allowed with argument' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and r.stdout == ''

def test_fine_tune_without_a_global_model_is_one_line_exit_2(tmp_path):
    r = run_cli('train', '--crypto', 'BTC', '--models', 'naive,lightgbm', '--fine-tune', '2', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and '--fine-tune: needs a global model' in r.stderr, r.stderr
    r = run_cli('train', '--crypto', 'BTC', '--models', f'naive,{GLOBAL}', '--fine-tune', '-1', cwd=tmp_path)
    assert r.returncode == 2 and '--fine-tune' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_the_global_ensemble_is_refused_by_train_not_silently_replaced(tmp_path):
    r = run_cli('train', '--crypto', 'BTC', '--models', 'naive,lightgbm_global,ensemble_global', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'ensemble_global is for backtest' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and r.stdout == ''

def test_a_coin_too_short_for_the_global_fold_is_skipped_not_dropped(tmp_path):
    "PEPE (119 days) cannot have the global fold: it is reported skipped, and the others still train."
    art = tmp_path/'artifacts'
    r = run_cli('train', '--crypto', 'LTC,PEPE', '--models', f'naive,{GLOBAL}', '--no-ensemble', '--no-mlflow', '--data-dir', DATA_DIR,
                '--artifacts-dir', art, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'PEPE: skipped:' in r.stderr and '1 ok, 1 skipped, 0 failed' in r.stdout
    assert report_of(art, 'LTC')['global']['coins'] == 1 and not (art/'PEPE').exists()

# a small network: the stages are the same whatever its size, and the default one trains 50 s an epoch on two cores
SMALL_LSTM = dict(units=(8,), attention_units=4, n_features=12, windows_per_epoch=512)

def test_global_lstm_one_epoch(tmp_path):
    """The global LSTM (a small one) through the same stages: attention plot, SHAP and MLflow on its own inputs, a forecast
    from its saved copy; with `--fine-tune 1` each coin's saved network is its own."""
    import dataclasses
    from cryptoforecast.forecaster import MODELS
    art = tmp_path/'artifacts'
    entry = MODELS['lstm_global']
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        mp.setenv('MLFLOW_TRACKING_URI', '')
        mp.setitem(MODELS, 'lstm_global', dataclasses.replace(entry, kwargs={**entry.kwargs, **SMALL_LSTM}))
        rc = train_cli(['--crypto', 'BTC,ETH', '--models', 'naive,lstm_global', '--epochs', '1', '--fine-tune', '1', '--no-ensemble',
                        '--data-dir', str(DATA_DIR), '--artifacts-dir', str(art), '--seed', '1'])
    assert rc == 0, out.getvalue() + err.getvalue()
    reps = [report_of(art, c) for c in ('BTC', 'ETH')]
    assert reps[0]['global']['run'] == reps[1]['global']['run'] and reps[0]['global']['coins'] == 2
    assert reps[0]['global']['fine_tune'] == 1
    assert any('shap_lstm_global' in p for p in reps[0]['shap'])
    m, e = (model_class('lstm_global').load(rep['models']['lstm_global']) for rep in reps)
    assert m.fold_meta_['coin'] == 'BTC' and m.units == SMALL_LSTM['units'], 'the saved copy is the network that was trained'
    assert not all(np.array_equal(x, y) for x, y in zip(m.model.get_weights(), e.model.get_weights()))   # fine-tuned apart

def test_coin_embedding_without_a_global_deep_model_is_one_line_exit_2(tmp_path):
    for command in ('train', 'backtest'):
        which = ['--crypto', 'BTC'] if command == 'train' else ['--coins', 'BTC']
        r = run_cli(command, *which, '--models', 'naive,lightgbm_global', '--coin-embedding', cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and '--coin-embedding: needs a global deep model' in r.stderr, r.stderr
        assert 'Traceback' not in r.stderr and r.stdout == ''
