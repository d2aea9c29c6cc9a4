"""Faults of a training run after its models are fitted: a full disk or a registry write failing at any step registers
nothing and leaves no run RUNNING (or FINISHED) and no run folder; concurrent runs get their own folders; train's
promotions are champion moves `registry rollback` can undo; the summary says what was registered and why; an MLflow
server that does not answer and an `--artifacts-dir` that is a file are one line and exit 2."""
import errno, json, os, shutil, sqlite3, subprocess, sys, time
from pathlib import Path

import pytest

mlflow = pytest.importorskip('mlflow')
from mlflow import MlflowClient
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT/'cryptoforecast'/'sample'
CHEAP = ['--models', 'naive', '--no-ensemble', '--seed', '0']

@pytest.fixture
def sample(tmp_path, monkeypatch) -> Path:
    "A data folder with the embedded sample's BTC, and a cache of the test's own."
    d = tmp_path/'data'
    d.mkdir()
    shutil.copy(SAMPLE/'Binance_BTCUSDT_d.csv.gz', d)
    monkeypatch.setenv('CRYPTOFORECAST_CACHE_DIR', str(tmp_path/'cache'))
    return d

def _train(sample: Path, art: Path, **kw) -> dict:
    from cryptoforecast import train
    from cryptoforecast.data import load_universe
    return train.train_coin('BTC', universe=load_universe(sample), models=('naive',), ensemble=False, explain=False,
                            artifacts_dir=art, progress=False, seed=0, **kw)

def _full_disk(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')

def _registry(art: Path) -> dict:
    "Every run's status, every version with its aliases, and the champion moves recorded in `art`."
    c = MlflowClient(tracking_uri=f"sqlite:///{art}/mlflow.db", registry_uri=f"sqlite:///{art}/mlflow.db")
    runs = [r.info.status for r in c.search_runs([c.get_experiment_by_name('cryptoforecast').experiment_id])]
    try: aliases = c.get_registered_model('cryptoforecast-BTC').aliases   # {alias: version}
    except mlflow.exceptions.MlflowException: aliases = {}
    versions = {int(v.version): sorted(a for a, n in aliases.items() if int(n) == int(v.version))
                for v in c.search_model_versions("name = 'cryptoforecast-BTC'")}
    store = art/'forecasts.sqlite'
    moves = sqlite3.connect(store).execute('select action, from_version, to_version from champion_moves').fetchall() if store.exists() else []
    return dict(runs=runs, versions=versions, moves=moves)

def _fail_on(monkeypatch, where: str):
    "Make one write of the run's last steps fail as on a full disk."
    from cryptoforecast import live, tracking, train
    if where == 'log_outputs': monkeypatch.setattr(tracking, 'log_outputs', _full_disk)   # inside the MLflow run
    elif where == 'final report':                                                         # the report, after tracking
        real, seen = train.write_json, []
        def write_json(path, obj, *a, **k):
            if Path(path).name == 'report.json':
                seen.append(path)
                if len(seen) == 2: _full_disk()
            return real(path, obj, *a, **k)
        monkeypatch.setattr(train, 'write_json', write_json)
    elif where == 'champion alias':                                                       # registration, half-way
        real_alias = MlflowClient.set_registered_model_alias
        def alias(self, name, alias, version):
            if alias == 'champion': _full_disk()
            return real_alias(self, name, alias, version)
        monkeypatch.setattr(MlflowClient, 'set_registered_model_alias', alias)
    elif where == 'champion move': monkeypatch.setattr(live, 'record_move', _full_disk)     # the very last step
    else: raise ValueError(where)

@pytest.mark.parametrize('where', ['log_outputs', 'final report', 'champion alias', 'champion move'])
def test_a_run_failing_late_registers_nothing(sample, tmp_path, monkeypatch, where):
    art = tmp_path/'art'
    _fail_on(monkeypatch, where)
    with pytest.raises(OSError, match='No space left'): _train(sample, art)
    monkeypatch.undo()
    state = _registry(art)
    assert state['runs'] == ['FAILED'], state                     # never RUNNING, never FINISHED
    assert all(not aliases for aliases in state['versions'].values()) and not state['moves'], state
    assert not (art/'BTC').exists() or not list((art/'BTC').iterdir()), list((art/'BTC').iterdir())
    if where == 'final report':   # the next good run is the first version, champion: nothing blocks it
        res = _train(sample, art)
        assert res['mlflow']['promoted'] and res['mlflow']['reason'] == 'first version of the model'
        state = _registry(art)
        assert sorted(state['runs']) == ['FAILED', 'FINISHED'] and list(state['versions'].values()) == [['challenger', 'champion']]
        assert state['moves'] == [('train', None, res['mlflow']['version'])]


def test_concurrent_runs_get_their_own_folders(sample, tmp_path):
    "Two `train --no-mlflow` processes name their runs at the same moment (the clock stopped): both finish in their own folders."
    art = tmp_path/'art'
    # each process waits, just before it names its run, until both are there; its clock then reads the same second in both
    gate = f"""
import sys, time
from pathlib import Path
from cryptoforecast import train
import pandas as pd
from cryptoforecast.cli import main
real, gate, real_now = train.sweep_partial_runs, Path(sys.argv[1]), pd.Timestamp.now
def stopped_clock(tz=None):   # the next reading of the clock, the run's name, is the same second in both processes
    pd.Timestamp.now = real_now
    return pd.Timestamp('2024-05-01 12:00:00', tz=tz)
def together(coin_dir):
    (gate/str(__import__('os').getpid())).touch()
    t0 = time.time()
    while len(list(gate.iterdir())) < 2 and time.time() - t0 < 120: time.sleep(0.01)
    out = real(coin_dir)
    pd.Timestamp.now = stopped_clock
    return out
train.sweep_partial_runs = together
sys.exit(main(sys.argv[2:]))
"""
    (tmp_path/'gate').mkdir()
    argv = [sys.executable, '-c', gate, str(tmp_path/'gate'), 'train', '--crypto', 'BTC', *CHEAP, '--no-mlflow',
            '--data-dir', str(sample), '--artifacts-dir', str(art)]
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    runs = sorted(p.name for p in (art/'BTC').iterdir())
    assert runs == ['20240501-120000-s0', '20240501-120000-s0-2'], runs      # one second, one seed: the second takes `-2`
    for r in runs: assert json.loads((art/'BTC'/r/'report.json').read_text())['run'] == r


def test_summary_says_what_was_registered_and_train_moves_can_be_rolled_back(sample, tmp_path, capsys, monkeypatch):
    from cryptoforecast import live, tracking
    from cryptoforecast.train import train_cli
    art = tmp_path/'art'
    argv = ['--crypto', 'BTC', *CHEAP, '--data-dir', str(sample), '--artifacts-dir', str(art)]
    def summary(*extra) -> str:
        assert train_cli(argv + list(extra)) == 0
        out = capsys.readouterr().out
        return out[out.index('\ncoin'):]
    first = summary()
    assert 'v1' in first and 'champion' in first and 'first version of the model' in first, first
    second = summary()        # the same model again: kept as challenger, and the summary says why
    assert 'v2' in second and 'challenger' in second and 'is not below' in second, second
    monkeypatch.setattr(tracking, 'promotion_decision', lambda *a, **k: (True, 'better by any margin (test)'))
    third = summary()
    assert 'v3' in third and 'champion' in third and 'better by any margin (test)' in third, third
    monkeypatch.undo()
    store = live.store_path(art)
    moves = live.champion_moves(store, 'BTC')
    assert list(zip(moves['action'], moves['from_version'].fillna(0).astype(int), moves['to_version'])) == [('train', 0, 1), ('train', 1, 3)]
    assert live.rollback('BTC', store)['champion'] == 1
    assert 'not registered' in summary('--no-register') and '--no-register' in summary('--no-register')
    assert '--no-mlflow' in summary('--no-mlflow')


@pytest.mark.parametrize('command', [['train', '--crypto', 'BTC', *CHEAP], ['registry', 'history', '--coin', 'BTC']])
def test_an_mlflow_server_that_does_not_answer_is_one_line(sample, tmp_path, command):
    data = ['--data-dir', sample] if command[0] == 'train' else []
    t0 = time.time()
    r = run_cli(*command, *data, '--artifacts-dir', tmp_path/'art', cwd=tmp_path, env={'MLFLOW_TRACKING_URI': 'http://127.0.0.1:9'},
                timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and '\n' not in err and 'http://127.0.0.1:9' in err and 'MLFLOW_TRACKING_URI' in err, (r.returncode, err)
    assert time.time() - t0 < 60 and not (tmp_path/'art'/'BTC').exists()


def test_artifacts_dir_that_is_a_file_is_one_line(sample, tmp_path):
    (tmp_path/'afile').write_text('x')
    r = run_cli('train', '--crypto', 'BTC', *CHEAP, '--data-dir', sample, '--artifacts-dir', tmp_path/'afile', cwd=tmp_path,
                timeout=120)
    err = r.stderr.strip()
    assert r.returncode == 2 and '\n' not in err and '--artifacts-dir' in err and 'is a file' in err, (r.returncode, err)


def test_sigterm_during_tracking_leaves_no_running_run(sample, tmp_path):
    "`kill` (SIGTERM) while the MLflow run is open: the run ends FAILED, nothing is registered, no folder stays."
    art = tmp_path/'art'
    exe = Path(sys.executable).parent/'cryptoforecast'
    p = subprocess.Popen([str(exe), 'train', '--crypto', 'BTC', *CHEAP, '--data-dir', str(sample), '--artifacts-dir', str(art)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0, running = time.time(), []
    while not running and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
        try:
            with sqlite3.connect(art/'mlflow.db', timeout=5) as con:
                running = con.execute("select run_uuid from runs where status = 'RUNNING'").fetchall()
        except sqlite3.Error: pass   # not created yet, or being created
    assert running, p.communicate()
    p.send_signal(subprocess.signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode != 0, out + err
    state = _registry(art)
    assert state['runs'] == ['FAILED'] and not state['versions'] and not state['moves'], (state, err[-3000:])
    assert not (art/'BTC').exists() or not list((art/'BTC').iterdir()), list((art/'BTC').iterdir())
