"""Faults of the MLflow store and of training runs: where the store is, kill -9 and concurrent creation, stale runs,
promotion that compares like with like, each run's own model files, argument checks, and failed runs leaving nothing."""
import json, os, signal, socket, sqlite3, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip('mlflow')
from mlflow import MlflowClient
from conftest import DATA_DIR, needs_data, run_cli

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ['--models', 'naive,lightgbm', '--no-ensemble', '--seed', '1']

# a process that sets up the store in argv[1], opens a run, logs a metric, sleeps argv[2] seconds and finishes it
SETUP_AND_RUN = """
import sys, time, mlflow
from cryptoforecast.tracking import setup_mlflow, process_tags
setup_mlflow(artifacts_dir=sys.argv[1])
with mlflow.start_run(tags=process_tags()):
    mlflow.log_metric('x', 1.0)
    time.sleep(float(sys.argv[2]))
print('done')
"""

def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI')}
    return {**env, 'PYTHONPATH': str(ROOT), **extra}

def _start(store_dir: Path, sleep: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', SETUP_AND_RUN, str(store_dir), str(sleep)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def _runs(db: Path) -> list[str]:
    "The status of every run in the store `db`."
    with sqlite3.connect(db) as con: return [r[0] for r in con.execute('select status from runs')]

def _wait_for(pattern_dir: Path, timeout: float = 90) -> bool:
    "Wait until a file of the store (`mlflow.db` or its temporary twin, not the lock) appears in `pattern_dir`."
    t0 = time.time()
    while time.time() - t0 < timeout:
        if [p for p in pattern_dir.glob('mlflow.db*') if not p.name.endswith('.lock')]: return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize('delay', [0.3, 1.5, 3.0])
def test_kill_during_store_creation_then_rerun_succeeds(tmp_path, delay):
    p = _start(tmp_path, sleep=30)
    assert _wait_for(tmp_path), p.communicate()
    time.sleep(delay)
    p.send_signal(signal.SIGKILL); p.wait()
    r = subprocess.run([sys.executable, '-c', SETUP_AND_RUN, str(tmp_path), '0'], env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and 'done' in r.stdout, r.stderr[-3000:]
    status = _runs(tmp_path/'mlflow.db')
    assert 'FINISHED' in status and 'RUNNING' not in status, status   # the killed run, if it started, is FAILED
    assert not list(tmp_path.glob('mlflow.db.*.tmp*')), 'temporary stores are cleaned up'


@pytest.mark.parametrize('trial', range(3))
def test_four_processes_create_a_fresh_store_at_once(tmp_path, trial):
    procs = [_start(tmp_path) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-2000:] for o in outs]
    assert _runs(tmp_path/'mlflow.db') == ['FINISHED'] * 4


@pytest.fixture
def store(tmp_path, monkeypatch):
    "A fresh store in `tmp_path`, selected with MLFLOW_TRACKING_URI."
    from cryptoforecast.tracking import setup_mlflow
    monkeypatch.setenv('MLFLOW_TRACKING_URI', f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.delenv('MLFLOW_REGISTRY_URI', raising=False)
    setup_mlflow()
    yield tmp_path


def test_stale_running_run_is_marked_failed(store):
    from cryptoforecast.tracking import setup_mlflow, process_tags, TAG_PID, TAG_HOST
    dead = subprocess.Popen(['true']); dead.wait()
    c = MlflowClient()
    exp = c.get_experiment_by_name('cryptoforecast').experiment_id
    gone = c.create_run(exp, tags={**process_tags(), TAG_PID: str(dead.pid)}).info.run_id
    alive = c.create_run(exp, tags=process_tags()).info.run_id                      # this very process
    elsewhere = c.create_run(exp, tags={**process_tags(), TAG_PID: str(dead.pid), TAG_HOST: 'another-host'}).info.run_id
    untagged = c.create_run(exp).info.run_id                                         # not ours to judge
    setup_mlflow()
    status = {k: c.get_run(r).info.status for k, r in dict(gone=gone, alive=alive, elsewhere=elsewhere, untagged=untagged).items()}
    assert status == dict(gone='FAILED', alive='RUNNING', elsewhere='RUNNING', untagged='RUNNING')
    assert str(dead.pid) in c.get_run(gone).data.tags['cryptoforecast.failed_because']


def _half_migrate(db: Path):
    "Put the store's schema revision back to an early one, as a migration killed half-way leaves it."
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config
    revs = [r.revision for r in ScriptDirectory.from_config(_get_alembic_config('')).walk_revisions()]
    with sqlite3.connect(db) as con: con.execute('update alembic_version set version_num = ?', (revs[len(revs) // 2],))


@needs_data
def test_half_migrated_store_with_runs_is_refused_before_training(tmp_path):
    from cryptoforecast.tracking import setup_mlflow
    art = tmp_path/'art'
    setup_mlflow(artifacts_dir=art)
    with mlflow.start_run(): mlflow.log_metric('x', 1.0)
    _half_migrate(art/'mlflow.db')
    t0 = time.time()
    r = run_cli('train', '--crypto', 'BTC', *CHEAP, '--data-dir', DATA_DIR, '--artifacts-dir', art, cwd=tmp_path,
                env={'MLFLOW_TRACKING_URI': ''}, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip()
    assert '\n' not in err and str(art/'mlflow.db') in err and 'mlflow db upgrade' in err, err
    assert not (art/'BTC').exists() and time.time() - t0 < 60, 'refused before any training'


def test_half_migrated_store_without_runs_is_rebuilt(tmp_path):
    from cryptoforecast.tracking import setup_mlflow, store_problem
    setup_mlflow(artifacts_dir=tmp_path)
    _half_migrate(tmp_path/'mlflow.db')
    assert 'revision' in store_problem(tmp_path/'mlflow.db')
    r = subprocess.run([sys.executable, '-c', SETUP_AND_RUN, str(tmp_path), '0'], env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert store_problem(tmp_path/'mlflow.db') is None and list(tmp_path.glob('mlflow.db.broken-*'))


class ConstantForecaster:
    "A constant log-return forecaster with the pyfunc contract (`predict_frame`)."
    name = 'constant'
    def __init__(self, value=0.0): self.value = value
    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({'coin': 'BTC', 'origin': frame.index, 'horizon': 1, 'model': self.name, 'mean': self.value})


def test_promotion_needs_the_same_settings_and_a_real_improvement(store):
    from cryptoforecast.tracking import log_forecaster, register_and_promote, PROMOTION_MARGIN
    base = dict(horizons='1,7,30', split='chronological', data_sha256='abc')
    def version(score, **changes):
        with mlflow.start_run() as run: log_forecaster(ConstantForecaster())
        return register_and_promote(run.info.run_id, 'BTC', score, evaluation={**base, **changes})
    assert version(1.0)['promoted']
    smoke = version(0.996)                                  # a 1-epoch smoke run, 0.4% better: noise
    assert not smoke['promoted'] and smoke['champion_version'] == 1 and 'margin' in smoke['reason']
    other = version(0.5, horizons='1,7')                    # much better, but measured on other horizons
    assert not other['promoted'] and 'horizons' in other['reason']
    assert not version(0.5, data_sha256='def')['promoted']  # other data
    better = version(1.0 * (1 - PROMOTION_MARGIN) - 0.01)
    assert better['promoted'] and better['champion_version'] == better['version'] == 5
    c = MlflowClient()
    tags = c.get_model_version('cryptoforecast-BTC', '2').tags
    assert tags['eval.horizons'] == '1,7,30' and tags['promotion.decision'] == 'kept champion v1'
    assert float(tags['promotion.champion_val_rel_mae']) == 1.0 and 'margin' in tags['promotion.reason']
    assert str(c.get_model_version_by_alias('cryptoforecast-BTC', 'challenger').version) == '5'


def _store_counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        return con.execute('select count(*) from runs').fetchone()[0], con.execute('select count(*) from model_versions').fetchone()[0]


@needs_data
def test_tracking_uri_from_the_environment_own_model_files_and_no_register(tmp_path):
    art, db = tmp_path/'art', tmp_path/'elsewhere'/'mlflow.db'
    env = {'MLFLOW_TRACKING_URI': f"sqlite:///{db}", 'MLFLOW_REGISTRY_URI': ''}
    r = run_cli('train', '--crypto', 'BTC', *CHEAP, '--data-dir', DATA_DIR, '--artifacts-dir', art, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"--backend-store-uri sqlite:///{db}" in r.stdout
    assert db.exists() and not (art/'mlflow.db').exists() and _store_counts(db) == (1, 1)
    (run_dir,) = [p for p in (art/'BTC').iterdir()]           # nothing but the run folder: no shared model folders
    rep = json.loads((run_dir/'report.json').read_text())
    assert rep['mlflow']['tracking_uri'] == f"sqlite:///{db}" and rep['mlflow']['promoted']
    assert set(rep['models']) == {'naive', 'lightgbm'}
    for name, path in rep['models'].items():
        assert Path(path).exists() and Path(path).is_relative_to(run_dir/'models'/name), path
    # --no-register: a run is logged, the registry is untouched
    r = run_cli('train', '--crypto', 'BTC', *CHEAP, '--seed', '2', '--no-register', '--data-dir', DATA_DIR, '--artifacts-dir', art,
                cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _store_counts(db) == (2, 1)
    runs = sorted(p for p in (art/'BTC').iterdir())
    assert len(runs) == 2 and 'version' not in json.loads((runs[-1]/'report.json').read_text())['mlflow']
    # the first run's model files were not overwritten by the second
    assert all(Path(p).exists() for p in rep['models'].values())


@pytest.mark.parametrize('args, says', [
    (['--epochs', '0'], '--epochs'), (['--epochs', '-3'], '--epochs'), (['--crypto', ''], '--crypto'),
    (['--models', 'lightgbn'], "did you mean 'lightgbm'"), (['--seed', str(2**32)], '--seed'),
    (['--tune-trials', '0'], '--tune-trials'), (['--tune', '--tune-models', 'naive'], '--tune-models'),
    (['--tune', '--tune-models', 'lstm', '--models', 'naive,lightgbm'], 'lstm')])
def test_bad_arguments_are_refused_before_reading_data(tmp_path, args, says):
    empty = tmp_path/'no-data'; empty.mkdir()   # reading it would fail differently: no coins there
    base = {'--crypto': 'BTC', '--models': 'naive,lightgbm'}
    for k in args[::2]: base.pop(k, None)
    argv = [x for kv in base.items() for x in kv] + args
    r = run_cli('train', *argv, '--data-dir', empty, '--artifacts-dir', tmp_path/'art', cwd=tmp_path, timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and '\n' not in err and says in err, (r.returncode, err)
    assert 'no data' not in err and not (tmp_path/'art').exists()


def test_models_choices_come_from_the_model_registry(tmp_path):
    from cryptoforecast.backtest import KNOWN_MODELS
    r = run_cli('train', '--crypto', 'BTC', '--models', 'lightgbn', '--data-dir', tmp_path, cwd=tmp_path, timeout=120)
    assert all(m in r.stderr for m in KNOWN_MODELS), r.stderr


def test_failed_run_leaves_no_run_folder(tmp_path, monkeypatch):
    from cryptoforecast import plots, train
    from cryptoforecast.features import synthetic_ohlcv
    def broken(*a, **k): raise RuntimeError('disk full')
    monkeypatch.setattr(plots, 'save_all_plots', broken)
    with pytest.raises(RuntimeError, match='disk full'):
        train.train_coin('SYN', universe={'SYN': synthetic_ohlcv(700, seed=1)}, models=('naive',), ensemble=False, track=False,
                         explain=False, artifacts_dir=tmp_path, progress=False, seed=0)
    assert not (tmp_path/'SYN').exists() or not list((tmp_path/'SYN').iterdir()), list((tmp_path/'SYN').iterdir())
    monkeypatch.undo()
    # what killed runs leave: a temporary folder whose process has ended goes, one whose process runs stays
    from cryptoforecast.tracking import process_tags, TAG_PID
    dead = subprocess.Popen(['true']); dead.wait()
    killed, running = tmp_path/'SYN'/'.20200101-000000-s0.abc.partial', tmp_path/'SYN'/'.20200101-000001-s0.def.partial'
    for d, pid in ((killed, dead.pid), (running, os.getpid())):
        d.mkdir(parents=True)
        (d/'.owner.json').write_text(json.dumps({**process_tags(), TAG_PID: str(pid)}))
    res = train.train_coin('SYN', universe={'SYN': synthetic_ohlcv(700, seed=1)}, models=('naive',), ensemble=False, track=False,
                           explain=False, artifacts_dir=tmp_path, progress=False, seed=0)
    assert sorted(p.name for p in (tmp_path/'SYN').iterdir()) == sorted([running.name, Path(res['run_dir']).name])
    assert not (Path(res['run_dir'])/'.owner.json').exists()
    assert json.loads(Path(res['report']).read_text())['coin'] == 'SYN' and not list(Path(res['run_dir']).rglob('*.tmp'))
    assert not (Path(res['run_dir'])/'shap').exists(), 'no SHAP folder when nothing is explained'
