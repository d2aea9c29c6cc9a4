"""Bad input to the benchmark scripts: the reason on the last line of stderr and exit code 2, never a traceback.
Each script runs on a data folder holding one real coin (ETH), so finding out that a coin is missing is quick."""
import os, subprocess, sys

import pytest

from conftest import DATA_DIR, ROOT, needs_data

MISSING = '/nonexistent/cryptoforecast-faults.parquet'

BAD_INPUT = {
    'volatility unknown coin':        (['volatility.py', '--coins', 'ZZZ'], 'no data for ZZZ'),
    'skill unknown coin':             (['skill.py', '--coins', 'ZZZ', '--models', 'naive'], 'no data for ZZZ'),
    'skill missing --preds':          (['skill.py', '--preds', MISSING], 'cannot read it as parquet'),
    'skill --cached-only alone':      (['skill.py', '--cached-only'], '--cached-only needs --cache-dir'),
    'skill --out a folder':           (['skill.py', '--out', 'benchmarks', '--models', 'naive'], 'benchmarks: is a folder'),
    'calibration_cost no coins':      (['calibration_cost.py', '--coins', '0'], 'must be at least 1'),
    'zero_shot unknown model':        (['zero_shot.py', '--models', 'nosuch'], "unknown model 'nosuch'"),
    'sigma_ceiling missing --raw':    (['sigma_ceiling.py', '--raw', MISSING], 'cannot read it as parquet'),
    'sigma_ceiling bad weights':      (['sigma_ceiling.py', '--raw', MISSING, '--weights', '0,2'], 'must be in [0, 1]'),
    'decisions missing --preds':      (['decisions.py', '--preds', MISSING], 'no such file'),
    'deep_cost unknown coin (child)': (['deep_cost.py', '--coin', 'ZZZ', '--models', 'lstm', '--epochs', '1'],
                                       'ZZZ is not in the data directory'),
}

@pytest.fixture(scope='module')
def one_coin_dir(tmp_path_factory):
    import shutil
    from cryptoforecast.batch import coin_sources
    folder = tmp_path_factory.mktemp('one-coin')
    shutil.copy(coin_sources(DATA_DIR)['ETH'].path, folder)
    return folder

@needs_data
@pytest.mark.parametrize('args,says', BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_exits_2_with_the_reason(args, says, one_coin_dir):
    env = {**os.environ, 'CRYPTOFORECAST_DATA_DIR': str(one_coin_dir), 'PYTHONWARNINGS': 'ignore'}
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/args[0]), *args[1:]], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=180)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert 'Traceback' not in r.stderr + r.stdout, r.stderr[-2000:]
    assert lines and 'error: ' in lines[-1] and says in lines[-1], r.stderr[-2000:]
