"""What a new user's mistakes and damaged inputs give: each probe runs the installed command and prints its exit code
and the first line it wrote to stderr, as a table (a Markdown table with --markdown).

Run: .venv/bin/python benchmarks/fault_probes.py [--markdown]

Every probe works in a fresh temporary folder with its own cache and artifacts, on the embedded sample or on small
files it writes itself, so nothing here depends on the real data. A good answer is exit code 2 with one line
`error: ...` naming the thing and the problem, and no traceback; the probes that feed good data expect exit 0.
The heavier probes (kill -9 during the first MLflow store creation, concurrent store setups, the dashboard's kernels
and signals; `serve`'s payloads, bounds, timeout, SIGTERM, restart and damaged cache) are tests:
tests/test_faults_tracking.py, tests/test_faults_data.py, tests/test_faults_dashboard.py, tests/test_faults_serve.py.
So are a full disk or a failing registry write late in `train` (tracking, the report, the champion alias, the champion
move: nothing registered, no run RUNNING, no run folder) and two `train` runs naming their folders in the same second:
tests/test_faults_train.py. The probes below run two concurrent `train --no-mlflow` as they come (exit codes and run
folders), an unreachable MLFLOW_TRACKING_URI, a truncated or garbage mlflow.db and an `--artifacts-dir` that is a file.
"""
import argparse, gzip, os, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

EXE = Path(sys.executable).parent/'cryptoforecast'
SAMPLE = Path(__file__).resolve().parents[1]/'cryptoforecast'/'sample'

def price_file(folder: Path, name: str, close, dates=None, symbol=None) -> Path:
    "A small Yahoo-style daily file with the given closes (and a symbol column when given)."
    dates = dates if dates is not None else pd.date_range('2024-01-01', periods=len(close), freq='D').strftime('%Y-%m-%d')
    df = pd.DataFrame(dict(datetime=dates, open=close, high=[c * 1.01 for c in close], low=[c * 0.99 for c in close],
                           close=close, volume=1e6))
    if symbol: df.insert(1, 'symbol', symbol)
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder/name, index=False)
    return folder/name

def sample_copy(folder: Path, coins=('BTC', 'ETH')) -> Path:
    "The sample's files of `coins`, copied into `folder`."
    folder.mkdir(parents=True, exist_ok=True)
    for c in coins: shutil.copy(SAMPLE/f"Binance_{c}USDT_d.csv.gz", folder)
    return folder

def bad_price(kind: str):
    "A data folder whose XYZ file has a non-finite price or dates with UTC offsets."
    def make(tmp: Path) -> list[str]:
        close = [10. + i % 5 for i in range(60)]
        if kind in ('inf', '1e309'):
            f = price_file(tmp/'data', 'XYZ-USD_1d.csv', close)
            text = f.read_text().splitlines()
            text[6] = ','.join(text[6].split(',')[:4] + [kind] + text[6].split(',')[5:])
            f.write_text('\n'.join(text) + '\n')
        else:
            days = pd.date_range('2024-01-01', periods=60, freq='D')
            offsets = ['+09:00'] * 60 if kind == 'offset' else ['+09:00'] * 30 + ['+00:00'] * 30
            price_file(tmp/'data', 'XYZ-USD_1d.csv', close, dates=[d.strftime('%Y-%m-%dT00:00:00') + o for d, o in zip(days, offsets)])
        return ['data', 'check', '--data-dir', str(tmp/'data')]
    return make

def conflicting(tmp: Path) -> list[str]:
    "ETH from the sample, and a second ETH file priced 1000 times lower."
    d = sample_copy(tmp/'data', ('BTC', 'ETH'))
    price_file(d, 'ETH-USD_1d.csv', [3.] * 400, dates=pd.date_range('2023-01-01', periods=400, freq='D').strftime('%Y-%m-%d'))
    return ['train', '--crypto', 'ETH', '--models', 'naive', '--no-ensemble', '--no-mlflow', '--data-dir', str(d)]

def evil_symbol(tmp: Path) -> list[str]:
    price_file(tmp/'data', 'prices.csv', [10.] * 60, symbol='../../evil')
    return ['data', 'check', '--data-dir', str(tmp/'data')]

def damaged_cache(how: str):
    "A first load fills the cache; then every entry is damaged (truncated, emptied, bit-flipped) or swapped."
    def make(tmp: Path) -> list[str]:
        d = sample_copy(tmp/'data')
        run(['data', 'list', '--data-dir', str(d)], tmp)
        entries = sorted((tmp/'cache').rglob('*.parquet'))
        if how == 'swapped':
            a, b = entries[:2]
            a.write_bytes(b.read_bytes())
        for e in entries if how != 'swapped' else []:
            raw = e.read_bytes()
            e.write_bytes(b'' if how == 'empty' else raw[:len(raw) // 2] if how == 'truncated'
                          else raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0x10]) + raw[len(raw) // 2 + 1:])
        return ['data', 'list', '--data-dir', str(d)]
    return make

def forced_source(tmp: Path) -> list[str]:
    "Two files of ETH that disagree, and `data check --source ETH=FILE` choosing one."
    d = sample_copy(tmp/'data', ('BTC', 'ETH'))
    price_file(d, 'ETH-USD_1d.csv', [3.] * 400, dates=pd.date_range('2023-01-01', periods=400, freq='D').strftime('%Y-%m-%d'))
    return ['data', 'check', '--data-dir', str(d), '--source', f"ETH={d/'Binance_ETHUSDT_d.csv.gz'}"]

def renamed_file(tmp: Path) -> list[str]:
    "A file read once (into the cache) as XYZ, then renamed to ABC: `data list` must say ABC."
    f = price_file(tmp/'data', 'XYZ-USD_1d.csv', [10. + i % 5 for i in range(60)])
    run(['data', 'list', '--data-dir', str(tmp/'data')], tmp)
    f.rename(f.with_name('ABC-USD_1d.csv'))
    return ['data', 'list', '--data-dir', str(tmp/'data')]

def identical_bytes(tmp: Path) -> list[str]:
    "ABC-USD_1d.csv and XYZ-USD_1d.csv with identical bytes: two coins (`data check` lists both)."
    f = price_file(tmp/'data', 'ABC-USD_1d.csv', [10. + i % 5 for i in range(60)])
    shutil.copy(f, f.with_name('XYZ-USD_1d.csv'))
    return ['data', 'check', '--data-dir', str(tmp/'data'), 'ABC', 'XYZ']

def one_bad_field(*command: str):
    "The sample's BTC and ETH and a third file with the text 'abc' in its close column: the command on the folder."
    def make(tmp: Path) -> list[str]:
        d = sample_copy(tmp/'data', ('BTC', 'ETH'))
        f = price_file(d, 'XYZ-USD_1d.csv', [10. + i % 5 for i in range(400)])
        lines = f.read_text().splitlines()
        lines[6] = ','.join(lines[6].split(',')[:4] + ['abc'] + lines[6].split(',')[5:])
        f.write_text('\n'.join(lines) + '\n')
        out = ['--out', str(tmp/'out.parquet')] if command[0] in ('features', 'backtest') else []
        return [*command, '--data-dir', str(d), *out]
    return make

def data_dir_a_file(*command: str):
    "A price file given as the data folder."
    def make(tmp: Path) -> list[str]:
        f = price_file(tmp, 'prices.csv', [10.] * 60)
        return [*command, '--data-dir', str(f)]
    return make

def arguments(*argv):
    return lambda tmp: list(argv)

def empty_folder(tmp: Path) -> list[str]:
    (tmp/'empty').mkdir()
    return ['data', 'list', '--data-dir', str(tmp/'empty')]

def path_is_a_file(*argv):
    "`argv`, then a file written in the probe's folder where the last flag wants a folder."
    def make(tmp: Path) -> list[str]:
        (tmp/'a-file').write_text('not a folder')
        return [*argv, str(tmp/'a-file')]
    return make
def serve_artifacts_file(tmp: Path) -> list[str]:
    "`serve` given a file where its artifacts folder should be."
    (tmp/'artifacts').write_text('not a folder')
    return ['serve', '--coin', 'BTC', '--artifacts-dir', str(tmp/'artifacts')]
def strategy_input(kind: str):
    "`strategy` on a predictions file it must refuse (one row, an inf forecast, missing, a folder) or an --out that is a file."
    def make(tmp: Path) -> list[str]:
        from cryptoforecast.decisions import synthetic_predictions
        p = synthetic_predictions(n_days=40, coins=[f'C{i}' for i in range(6)])
        path, out = tmp/'preds.parquet', tmp/'out'
        if kind == 'one row': p = p.head(1)
        if kind == 'inf': p.loc[7, 'mean'] = float('inf')
        if kind == 'out is a file': out.write_text('')
        if kind == 'folder': path.mkdir()
        elif kind != 'missing': p.to_parquet(path)
        return ['strategy', '--preds', str(path), '--draws', '50', '--out', str(out)]
    return make

def file_as_out(command: str):
    "`command --out FILE`, FILE an existing file."
    def make(tmp: Path) -> list[str]:
        (tmp/'file').write_text('')
        return [command, '--out', str(tmp/'file')]
    return make

def train_artifacts_file(tmp: Path) -> list[str]:
    (tmp/'afile').write_text('not a folder')
    return ['train', '--crypto', 'BTC', '--models', 'naive', '--no-ensemble', '--artifacts-dir', str(tmp/'afile')]

def unreachable_mlflow(*argv):
    "A command with MLFLOW_TRACKING_URI at a port nobody listens on (the probe's own env: see `run`)."
    return lambda tmp: (list(argv), {'MLFLOW_TRACKING_URI': 'http://127.0.0.1:9'})

STORE_WITH_A_RUN = "import sys, mlflow; from cryptoforecast.tracking import setup_mlflow; setup_mlflow(artifacts_dir=sys.argv[1]); " \
                   "mlflow.start_run(); mlflow.log_metric('x', 1.0); mlflow.end_run()"

def damaged_store(how: str):
    "An MLflow store in artifacts/ that holds a run, then truncated to half or overwritten with garbage; `train` next."
    def make(tmp: Path) -> list[str]:
        art = tmp/'artifacts'
        subprocess.run([sys.executable, '-c', STORE_WITH_A_RUN, str(art)], check=True, capture_output=True, timeout=300)
        db = art/'mlflow.db'
        raw = db.read_bytes()
        db.write_bytes(raw[:len(raw) // 2] if how == 'truncated' else b'garbage' * 1000)
        return ['train', '--crypto', 'BTC', '--models', 'naive', '--no-ensemble', '--artifacts-dir', str(art)]
    return make

PROBES = {
    'train --epochs 0': arguments('train', '--crypto', 'BTC', '--epochs', '0'),
    'train --epochs -3': arguments('train', '--crypto', 'BTC', '--epochs', '-3'),
    'train --crypto ""': arguments('train', '--crypto', ''),
    'train --models lightgbn': arguments('train', '--crypto', 'BTC', '--models', 'lightgbn'),
    'train --seed 2**32': arguments('train', '--crypto', 'BTC', '--seed', str(2**32)),
    'backtest --horizons 0': arguments('backtest', '--coins', 'BTC', '--horizons', '0'),
    'backtest --horizons 7,abc': arguments('backtest', '--coins', 'BTC', '--horizons', '7,abc'),
    'backtest --jobs 0': arguments('backtest', '--coins', 'BTC', '--jobs', '0'),
    'backtest --test-size 0': arguments('backtest', '--coins', 'BTC', '--test-size', '0'),
    'dashboard --port 99999': arguments('dashboard', '--port', '99999'),
    'batch -p epochz 1': arguments('batch', '--crypto', 'BTC', '-p', 'epochz', '1'),
    'site --runs /nonexistent': arguments('site', '--runs', '/nonexistent'),
    'data list on an empty folder': empty_folder,
    'data list, no data given (sample)': arguments('data', 'list'),
    'inf price': bad_price('inf'),
    '1e309 price': bad_price('1e309'),
    'dates at +09:00 (consistent)': bad_price('offset'),
    'dates with mixed offsets': bad_price('mixed'),
    'two files of ETH disagree x1000': conflicting,
    'symbol column ../../evil': evil_symbol,
    'cache entries truncated': damaged_cache('truncated'),
    'cache entries emptied': damaged_cache('empty'),
    'cache entries bit-flipped': damaged_cache('flipped'),
    'cache entry swapped (BTC under ETH)': damaged_cache('swapped'),
    'data check --source ETH=FILE (two ETH files disagree)': forced_source,
    'data check Uni=/Tmp/Prices.csv (case kept)': arguments('data', 'check', 'Uni=/Tmp/Prices.csv'),
    'backtest --source ./Raw/Uni-usd.csv (case kept)': arguments('backtest', '--coins', 'BTC', '--source', './Raw/Uni-usd.csv'),
    'renamed price file after a cached read': renamed_file,
    'two files with identical bytes': identical_bytes,
    "one 'abc' close in one file: data list": one_bad_field('data', 'list'),
    "one 'abc' close in one file: data check": one_bad_field('data', 'check'),
    "one 'abc' close in one file: features BTC": one_bad_field('features', 'BTC'),
    "one 'abc' close in one file: backtest naive": one_bad_field('backtest', '--all', '--models', 'naive', '--folds', '1'),
    'data list --data-dir FILE': data_dir_a_file('data', 'list'),
    'features --data-dir FILE': data_dir_a_file('features', 'BTC'),
    'data download --data-dir FILE': data_dir_a_file('data', 'download', '--source', 'binance', '--coins', 'ETH'),
    'site --out FILE': path_is_a_file('site', '--no-execute', '--out'),
    'dashboard --artifacts-dir FILE': path_is_a_file('dashboard', '--artifacts-dir'),
    'serve --artifacts-dir FILE': serve_artifacts_file,
    'serve --timeout 0': arguments('serve', '--coin', 'BTC', '--timeout', '0'),
    'serve --workers 0': arguments('serve', '--coin', 'BTC', '--workers', '0'),
    'serve --max-request-mb inf': arguments('serve', '--coin', 'BTC', '--max-request-mb', 'inf'),
    'strategy: one-row predictions': strategy_input('one row'),
    'strategy: inf in the predictions': strategy_input('inf'),
    'strategy: no such predictions file': strategy_input('missing'),
    'strategy: a folder as --preds': strategy_input('folder'),
    'strategy --out FILE': strategy_input('out is a file'),
    'analyze --window 1000000': arguments('analyze', '--window', '1000000'),
    'analyze --out FILE': file_as_out('analyze'),
}

LIVE_PREPARE = """
import sqlite3, sys
from pathlib import Path
import pandas as pd
from cryptoforecast import live
art, how = Path(sys.argv[1]), sys.argv[2]
store = live.store_path(art)
if how in ('truncated', 'garbage'):
    rows = pd.DataFrame({'coin': 'BTC', 'origin': pd.date_range('2020-01-01', periods=2000).strftime('%Y-%m-%d'), 'horizon': 1,
                         'alias': 'champion', 'model_version': 1, 'model': 'toy', 'mean': 0.0, 'sigma': 0.1, 'point': 0.0,
                         'close_origin': 1.0, 'run_id': None, 'as_of': None, 'created_at': 'now'})
    for c in live.QUANTILE_COLS: rows[c] = 0.0
    live.insert_forecasts(store, rows)
    with sqlite3.connect(store) as con: con.execute('pragma wal_checkpoint(truncate)')
    raw = store.read_bytes()
    store.write_bytes(raw[:len(raw) // 2] if how == 'truncated' else b'garbage' * 1000)
elif how == 'deleted':   # BTC v1 then v2 as champion (moves recorded), then v1 deleted from the registry
    from mlflow import MlflowClient
    from cryptoforecast.tracking import setup_mlflow
    setup_mlflow(artifacts_dir=art)
    client = MlflowClient()
    client.create_registered_model('cryptoforecast-BTC')
    for v in (1, 2): client.create_model_version('cryptoforecast-BTC', (art / f'model{v}').as_uri())
    client.set_registered_model_alias('cryptoforecast-BTC', 'champion', '2')
    live.record_move(store, 'BTC', 'train', None, 1, {})
    live.record_move(store, 'BTC', 'train', 1, 2, {})
    client.delete_model_version('cryptoforecast-BTC', '1')
"""

def live_store(how: str, *command):
    "An artifacts folder prepared as `how` says (store truncated or garbage; a registry whose rollback target is deleted)."
    def make(tmp: Path) -> list[str]:
        env = {**os.environ, 'PYTHONPATH': os.environ.get('PYTHONPATH', '')}
        env.pop('MLFLOW_TRACKING_URI', None)
        subprocess.run([sys.executable, '-c', LIVE_PREPARE, str(tmp/'art'), how], env=env, check=True, capture_output=True)
        return [*command, '--artifacts-dir', str(tmp/'art')]
    return make

def artifacts_file(*command):
    "`command` with an --artifacts-dir that is a file."
    def make(tmp: Path) -> list[str]:
        (tmp/'afile').write_text('not a folder')
        return [*command, '--artifacts-dir', str(tmp/'afile')]
    return make

LIVE_PROBES = {
    'forecast, forecasts.sqlite truncated': live_store('truncated', 'forecast', '--crypto', 'BTC'),
    'monitor, forecasts.sqlite truncated': live_store('truncated', 'monitor'),
    'monitor, forecasts.sqlite garbage': live_store('garbage', 'monitor'),
    'registry history, forecasts.sqlite truncated': live_store('truncated', 'registry', 'history', '--coin', 'BTC'),
    'registry history, forecasts.sqlite garbage': live_store('garbage', 'registry', 'history', '--coin', 'BTC'),
    'registry rollback, nothing to undo': arguments('registry', 'rollback', '--coin', 'BTC', '--artifacts-dir', 'empty-art'),
    'registry rollback to a deleted version': live_store('deleted', 'registry', 'rollback', '--coin', 'BTC'),
    'forecast --artifacts-dir a file': artifacts_file('forecast', '--crypto', 'BTC'),
    'monitor --artifacts-dir a file': artifacts_file('monitor'),
    'registry history --artifacts-dir a file': artifacts_file('registry', 'history'),
}
PROBES.update(LIVE_PROBES)

TRAIN_PROBES = {
    'train --artifacts-dir a file': train_artifacts_file,
    'train, MLFLOW_TRACKING_URI unreachable': unreachable_mlflow('train', '--crypto', 'BTC', '--models', 'naive', '--no-ensemble'),
    'registry history, MLFLOW_TRACKING_URI unreachable': unreachable_mlflow('registry', 'history'),
    'forecast, MLFLOW_TRACKING_URI unreachable': unreachable_mlflow('forecast', '--crypto', 'BTC'),
    'train, mlflow.db truncated (it held a run)': damaged_store('truncated'),
    'train, mlflow.db garbage': damaged_store('garbage'),
}
PROBES.update(TRAIN_PROBES)

def run(argv: list[str], tmp: Path, extra_env: dict|None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, 'CRYPTOFORECAST_CACHE_DIR': str(tmp/'cache'), 'HOME': str(tmp)}
    env.pop('CRYPTOFORECAST_DATA_DIR', None)
    env.pop('MLFLOW_TRACKING_URI', None)
    return subprocess.run([str(EXE), *argv], cwd=tmp, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=600)

def served_closes(tmp: Path, use_cache: bool = True) -> str:
    "The last closes of BTC and ETH as the loader serves them from `tmp`'s data folder and cache."
    code = ("import sys; from cryptoforecast.data import load_universe; "
            f"u = load_universe(sys.argv[1], ['BTC', 'ETH'], use_cache={use_cache}); "
            "print(', '.join(f\"{c} {u[c]['close'].iloc[-1]:.2f}\" for c in u))")
    env = {**os.environ, 'CRYPTOFORECAST_CACHE_DIR': str(tmp/'cache')}
    return subprocess.run([sys.executable, '-c', code, str(tmp/'data')], env=env, capture_output=True, text=True).stdout.strip()

def probe(name: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.time()
        argv = PROBES[name](tmp)
        argv, extra_env = argv if isinstance(argv, tuple) else (argv, None)   # a probe may set its own environment
        r = run(argv, tmp, extra_env)
        lines = [l for l in r.stderr.splitlines() if l.strip() and not l.startswith(('note:', 'reading'))]
        extra = ''
        if name.startswith('cache entr'):  # the frames served after the damage are the right coins' frames
            extra = served_closes(tmp) + f" (from the files: {served_closes(tmp, use_cache=False)})"
        return dict(probe=name, exit=r.returncode, lines=len(lines), traceback='Traceback' in r.stderr,
                    first=(lines[0] if lines else extra or (r.stdout.splitlines() or [''])[0])[:140], seconds=round(time.time() - t0, 1))

def concurrent_first_loads(n: int = 4) -> dict:
    "`n` `data check` at once on an empty cache."
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        folder = sample_copy(tmp/'data', ('BTC', 'ETH', 'LTC'))
        with ThreadPoolExecutor(n) as ex: codes = list(ex.map(lambda _: run(['data', 'check', '--data-dir', str(folder)], tmp).returncode, range(n)))
        return dict(probe=f"{n} concurrent first loads", exit=max(codes), lines=0, traceback=False,
                    first=f"exit codes {codes}", seconds=0.)

def concurrent_trains(n: int = 2) -> dict:
    "`n` `train --crypto BTC --no-mlflow` at once into one artifacts folder: each must finish in its own run folder."
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        argv = ['train', '--crypto', 'BTC', '--models', 'naive', '--no-ensemble', '--no-mlflow', '--artifacts-dir', str(tmp/'art')]
        t0 = time.time()
        with ThreadPoolExecutor(n) as ex: codes = list(ex.map(lambda _: run(argv, tmp).returncode, range(n)))
        runs = sorted(p.name for p in (tmp/'art'/'BTC').iterdir()) if (tmp/'art'/'BTC').exists() else []
        return dict(probe=f"{n} concurrent train --no-mlflow", exit=max(codes), lines=0, traceback=False,
                    first=f"exit codes {codes}, run folders {runs}", seconds=round(time.time() - t0, 1))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--markdown', action='store_true', help='print a Markdown table')
    a = ap.parse_args()
    from tqdm.auto import tqdm
    rows = [probe(n) for n in tqdm(PROBES, desc='probes', unit='probe')] + [concurrent_first_loads(), concurrent_trains()]
    table = pd.DataFrame(rows)
    if a.markdown:
        print('| probe | exit | stderr lines | traceback | first line |\n|---|---|---|---|---|')
        for r in rows: print(f"| {r['probe']} | {r['exit']} | {r['lines']} | {'yes' if r['traceback'] else 'no'} | `{r['first']}` |")
    else:
        with pd.option_context('display.max_colwidth', 140, 'display.width', 250): print(table.to_string(index=False))
