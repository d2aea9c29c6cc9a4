"""Bad command-line arguments of `backtest`, `batch` and `site`: refused before any data is read or any work starts,
as one line on stderr and exit code 2, never a traceback. Each case runs the installed CLI: about a second of
imports (pandas, scikit-learn; papermill for `-p`), nothing more. The notebooks test the argument types in-process."""
import pytest

from conftest import ROOT, run_cli

MISSING = '/nonexistent/cryptoforecast-faults'   # a folder that is not there: the data must never be reached

BAD_ARGS = {
    # backtest
    'backtest horizons 0':        (['backtest', '--coins', 'BTC', '--horizons', '0'], '--horizons'),
    'backtest horizons 7,abc':    (['backtest', '--coins', 'BTC', '--horizons', '7,abc'], "'abc'"),
    'backtest jobs 0':            (['backtest', '--coins', 'BTC', '--jobs', '0'], '--jobs'),
    'backtest test-size 0':       (['backtest', '--coins', 'BTC', '--test-size', '0'], '--test-size'),
    'backtest folds 0':           (['backtest', '--coins', 'BTC', '--folds', '0'], '--folds'),
    'backtest epochs 0':          (['backtest', '--coins', 'BTC', '--epochs', '0'], '--epochs'),
    'backtest unknown model':     (['backtest', '--coins', 'BTC', '--models', 'naive,prophet'], 'choose from naive, drift'),
    'backtest seed 2**32':        (['backtest', '--coins', 'BTC', '--seed', str(2**32)], '4294967295'),
    'backtest coin not a ticker': (['backtest', '--coins', '../../etc'], 'not a ticker'),
    'backtest data-dir missing':  (['backtest', '--coins', 'BTC', '--data-dir', MISSING], 'no such folder'),
    # batch
    'batch unknown parameter':    (['batch', '--crypto', 'BTC', '-p', 'epochz', '1'], "did you mean 'epochs'"),
    'batch epochs 0 via -p':      (['batch', '--crypto', 'BTC', '-p', 'epochs', '0'], '-p epochs'),
    'batch seed out of range':    (['batch', '--crypto', 'BTC', '-p', 'seed', '-5'], '-p seed'),
    'batch bool parameter':       (['batch', '--crypto', 'BTC', '-p', 'train', 'maybe'], 'true or false'),
    'batch jobs 0':               (['batch', '--crypto', 'BTC', '--jobs', '0'], '--jobs'),
    'batch epochs 0':             (['batch', '--crypto', 'BTC', '--epochs', '0'], '--epochs'),
    'batch crypto not a ticker':  (['batch', '--crypto', 'BTC,../x'], 'not a ticker'),
    # site
    'site runs missing':          (['site', '--runs', MISSING], 'no such folder'),
    'site nbs missing':           (['site', '--nbs', MISSING], 'no such folder'),
}

@pytest.mark.parametrize('args,says', BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_argument_is_one_line_exit_2(args, says, tmp_path):
    # batch and site get a data folder and an output folder that cannot be used: were the argument accepted, the
    # command would fail differently (or write into tmp_path), so the assertions below can fail
    extra = {'batch': ['--data-dir', MISSING, '--out', tmp_path/'runs'], 'site': ['--out', tmp_path/'site'],
             'backtest': []}[args[0]]
    r = run_cli(*args, *extra, cwd=ROOT, timeout=120)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    assert 'Traceback' not in r.stderr + r.stdout
    assert says in lines[0], lines[0]
    assert not (tmp_path/'runs').exists() and not (tmp_path/'site').exists()  # refused before any work started

