"""The production training pipeline through its CLI: outputs, MLflow run and registry, failure isolation."""
import json
from pathlib import Path

import pandas as pd
import pytest

from cryptoforecast.plots import PLOT_NAMES
from conftest import DATA_DIR, needs_data, run_cli

LIGHT = ['--models', 'naive,drift,lightgbm']
WITH_PEER = ['--models', 'naive,drift,garch,lightgbm']   # garch is scored beside the ensemble, not stacked in it

@needs_data
def test_train_outputs_tracking_and_failure_isolation(tmp_path):
    art = tmp_path/'artifacts'
    r = run_cli('train', '--crypto', 'BTC,PEPE', *WITH_PEER, '--data-dir', DATA_DIR, '--artifacts-dir', art, '--seed', '1',
                cwd=tmp_path, env={'MLFLOW_TRACKING_URI': ''}, timeout=900)
    # PEPE has 119 days, less than the feature warm-up: it fails alone, BTC finishes, the exit code says so
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'PEPE: failed' in r.stderr and 'warm-up' in r.stderr
    summary = r.stdout
    assert 'BTC' in summary and 'ok' in summary and 'failed' in summary and 'mlflow ui --backend-store-uri sqlite:///' in summary
    (run_dir,) = [p for p in (art/'BTC').iterdir() if p.name[0].isdigit()]
    pngs = sorted(p.stem for p in (run_dir/'plots').glob('*.png'))
    assert pngs == sorted(PLOT_NAMES)
    assert all((run_dir/'plots'/f"{n}.png").stat().st_size > 10_000 for n in PLOT_NAMES)
    rep = json.loads((run_dir/'report.json').read_text())
    assert rep['coin'] == 'BTC' and rep['seed'] == 1 and rep['headline']['model'] == 'ensemble'
    metrics = pd.DataFrame(rep['metrics'])
    assert set(metrics['model']) == {'naive', 'drift', 'garch', 'lightgbm', 'ensemble'} and set(metrics['horizon']) == {1, 7, 30}
    assert (metrics.loc[metrics['model'] == 'naive', 'rel_mae'] == 1).all()
    assert rep['data']['sha256'] and rep['data']['universe_hashes']['BTC'] == rep['data']['sha256']
    assert {'cov80', 'width80', 'cov95', 'width95'} <= set(rep['uncertainty'][0])
    assert set(rep['ensemble']['1']['mean_weights']) == {'naive', 'drift', 'lightgbm'} and len(rep['shap']) == 3  # the peer beside it
    # each run keeps its own model files, and the report points at them
    for m in ('naive', 'drift', 'lightgbm', 'ensemble'):
        assert rep['models'][m] == str(run_dir/'models'/m/'model.pkl') and Path(rep['models'][m]).exists()
    assert sorted(p.name for p in (art/'BTC').iterdir()) == [run_dir.name], 'no shared model folders, no temporary run folder'
    fc = pd.read_parquet(run_dir/'forecast.parquet')
    assert fc['origin'].nunique() == 1 and sorted(fc['horizon']) == [1, 7, 30] and fc['actual'].isna().all()
    # MLflow: a run with the metrics, and version 1 of cryptoforecast-BTC is champion and challenger
    import mlflow
    from mlflow import MlflowClient
    # set both: an earlier test in this process may have pointed the registry elsewhere
    mlflow.set_tracking_uri(rep['mlflow']['tracking_uri']); mlflow.set_registry_uri(rep['mlflow']['tracking_uri'])
    c = MlflowClient(tracking_uri=rep['mlflow']['tracking_uri'], registry_uri=rep['mlflow']['tracking_uri'])
    run = c.get_run(rep['mlflow']['run_id'])
    assert run.data.metrics['ensemble_h7_rel_mae'] == pytest.approx(metrics.query("model == 'ensemble' and horizon == 7")['rel_mae'].item())
    mv = c.get_model_version_by_alias('cryptoforecast-BTC', 'champion')
    assert str(mv.version) == '1' and str(c.get_model_version_by_alias('cryptoforecast-BTC', 'challenger').version) == '1'
    # the registered pyfunc returns a predictions frame
    model = mlflow.pyfunc.load_model('models:/cryptoforecast-BTC@champion')
    from cryptoforecast.data import load_universe
    from cryptoforecast.features import build_features, market_context
    u = load_universe(DATA_DIR)
    frame = build_features(u['BTC'], market=market_context(u)).iloc[-120:]
    preds = model.predict(frame)
    assert {'coin', 'origin', 'horizon', 'model', 'mean', 'q0.1', 'q0.9'} <= set(preds.columns) and len(preds) > 0

SAMPLE = Path(__file__).resolve().parents[1]/'cryptoforecast'/'sample'

def demo_commands(coins: str) -> list[list[str]]:
    "The `cryptoforecast` commands of the Makefile's `demo` target, in order, with `DEMO_COINS` set to `coins`."
    lines = (Path(__file__).resolve().parents[1]/'Makefile').read_text().split('\ndemo:', 1)[1].split('\n\n', 1)[0].splitlines()
    prefix = '\t$(BIN)/cryptoforecast '
    return [l.removeprefix(prefix).replace('$(DEMO_COINS)', coins).split() for l in lines if l.startswith(prefix)]

def test_demo_leaves_a_registered_champion_that_forecast_serves(tmp_path):
    "`make demo` after the install, for one coin of the embedded sample: a champion is registered and `forecast` answers."
    cmds = demo_commands('BTC')
    assert [c[0] for c in cmds] == ['data', 'data', 'train', 'forecast'] and '--no-register' not in cmds[2]
    env = {'MLFLOW_TRACKING_URI': '', 'CRYPTOFORECAST_CACHE_DIR': str(tmp_path/'cache')}
    out = {}
    for cmd in cmds:   # the embedded sample, as on a fresh clone without CRYPTOFORECAST_DATA_DIR
        r = run_cli(*cmd, '--data-dir', SAMPLE, cwd=tmp_path, env=env, timeout=600)
        assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
        out[cmd[0]] = r
    assert '\r' not in out['train'].stderr, 'no progress bar when stderr is not a terminal'
    from mlflow import MlflowClient
    uri = f"sqlite:///{tmp_path/'artifacts'/'mlflow.db'}"
    mv = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias('cryptoforecast-BTC', 'champion')
    assert str(mv.version) == '1'
    rep = json.loads(next((tmp_path/'artifacts'/'BTC').glob('*/report.json')).read_text())
    assert rep['config']['models'] == ['naive', 'drift', 'lightgbm', 'ensemble'] and rep['shap'] and rep['mlflow']['run_id']
    assert 'BTC' in out['forecast'].stdout

def test_train_artifacts_dir_that_is_a_file_is_refused_while_parsing(tmp_path):
    (tmp_path/'a-file').write_text('x')
    r = run_cli('train', '--crypto', 'BTC', '--artifacts-dir', tmp_path/'a-file', '--data-dir', SAMPLE, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stdout + r.stderr
    assert r.stderr.startswith('error: cryptoforecast train: argument --artifacts-dir:') and 'is a file' in r.stderr, r.stderr
