"""Faults of the dashboard server: kernels that pile up, signals that leave the server behind, damaged or moved runs,
stale forecasts, markup typed into the fields, and bad ports. Runs on a synthetic coin trained in a few seconds."""
import os, shutil, signal, socket, subprocess, sys, time, urllib.request, warnings
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from cryptoforecast.features import synthetic_ohlcv
from conftest import CHROMIUM, CHROMIUM_ARGS, run_cli
from test_dashboard import free_port, wait_port, wait_text

DAMAGED = '29990101-000000-s0'   # sorts after any real run folder

@pytest.fixture(scope='module')
def artifacts(tmp_path_factory) -> Path:
    "Runs of a synthetic coin SYN: a good one whose price file has since moved away, and a later one with report.json cut short."
    from cryptoforecast.train import train_coin
    root = tmp_path_factory.mktemp('faults')
    data = root/'data'
    data.mkdir()
    px = synthetic_ohlcv(700, seed=3).rename_axis('datetime').reset_index()
    px['datetime'] = px['datetime'].dt.strftime('%Y-%m-%d')
    px[['datetime', 'open', 'high', 'low', 'close', 'volume']].to_csv(data/'SYN-USD_1d.csv', index=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = train_coin('SYN', data_dir=data, models=('naive', 'drift'), ensemble=False, track=False, explain=False,
                         progress=False, artifacts_dir=root/'artifacts', seed=0)
    good = Path(res['run_dir'])
    bad = good.parent/DAMAGED
    shutil.copytree(good, bad)
    report = (bad/'report.json').read_bytes()
    (bad/'report.json').write_bytes(report[:len(report) // 2])
    (data/'SYN-USD_1d.csv').rename(root/'moved-SYN-USD_1d.csv')
    return root/'artifacts'

def still_alive(p: psutil.Process) -> bool:
    "Whether `p` runs and is not a zombie; one that exits while it is asked is not alive."
    try: return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess: return False

def tree(pid: int) -> list:
    "The processes below `pid`, alive (one that exits while the tree is read is left out, not the whole tree)."
    try: children = psutil.Process(pid).children(recursive=True)
    except psutil.Error: return []
    return [p for p in children if still_alive(p)]

def kernels(pid: int) -> list:
    "The page kernels (ipykernel processes) below `pid`."
    def is_kernel(p):
        try: return 'ipykernel' in ' '.join(p.cmdline())
        except psutil.Error: return False
    return [p for p in tree(pid) if is_kernel(p)]

def rss_mb(procs) -> float:
    total = 0
    for p in procs:
        try: total += p.memory_info().rss
        except psutil.Error: pass
    return total / 2**20

def listening(port: int) -> bool:
    with socket.socket() as s: return s.connect_ex(('127.0.0.1', port)) == 0

@contextmanager
def dashboard(artifacts: Path, tmp_path: Path, *args):
    "`cryptoforecast dashboard` on a free port, listening; yields (process, port, log path). Whatever is left is killed after."
    port = free_port()
    log_path = tmp_path/f"dashboard-{port}.log"
    exe = Path(sys.executable).parent/'cryptoforecast'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([str(exe), 'dashboard', '--port', str(port), '--artifacts-dir', str(artifacts), *args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
        everything = []
        try:
            wait_port(port, proc)
            yield proc, port, log_path
        finally:
            everything = [psutil.Process(proc.pid), *tree(proc.pid)] if proc.poll() is None else []
            for p in everything:
                try: p.kill()
                except psutil.Error: pass
            proc.wait()

def get_page(port: int) -> str:
    "The page as a bare GET sees it: Voila starts a kernel for it and runs the notebook before it answers."
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120) as r: return r.read().decode()

def stop_and_time(proc, port: int, sig) -> float:
    "Send `sig` to the command; seconds until nothing listens on `port` and none of the processes it started is alive."
    started = tree(proc.pid)
    assert kernels(proc.pid), 'no kernel to stop'
    t0 = time.monotonic()
    proc.send_signal(sig)
    while time.monotonic() - t0 < 30:
        alive = [p for p in started if still_alive(p)]
        if not alive and not listening(port) and proc.poll() is not None: return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"after {sig!r}: listening {listening(port)}, alive {[p.pid for p in started if still_alive(p)]}")

def test_bad_port_and_port_in_use_are_one_line_errors(artifacts):
    r = run_cli('dashboard', '--port', '99999', '--artifacts-dir', artifacts, timeout=60)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'between 1 and 65535, got 99999' in r.stderr, r.stderr
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen()
        busy = s.getsockname()[1]
        r = run_cli('dashboard', '--port', busy, '--artifacts-dir', artifacts, timeout=60)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and f"port {busy} on 127.0.0.1 is already in use" in r.stderr, r.stderr
    assert 'http://' not in r.stdout   # no address was printed for a server that never started

def browser_or_none():
    "Playwright's `sync_playwright` when it and Chromium are here, else None (the server checks run without a browser)."
    if not CHROMIUM.exists(): return None
    try: from playwright.sync_api import sync_playwright
    except ImportError: return None
    return sync_playwright

def check_page_faults(page):
    "The page of the `artifacts` fixture says what is wrong with its runs, and shows typed markup as text."
    page.wait_for_selector('.cf-price .js-plotly-plot', timeout=120_000)
    wait_text(page, '.cf-header', 'SYN: run')
    notices = page.inner_text('.cf-notices')
    assert f"Skipped the damaged latest run of SYN: {DAMAGED} (report.json cannot be read (JSONDecodeError" in notices, notices
    assert 'is not there any more: the history is not shown' in notices, notices   # no other copy was read
    assert 'no price history' in page.inner_text('.cf-price')
    assert 'Out of date: this 7-day forecast was for 2021-12-07 and ended' in page.inner_text('.cf-age')
    assert 'Traceback' not in page.inner_text('body')
    page.fill('.cf-holdings input', '<b>SYN</b> 1'); page.press('.cf-holdings input', 'Enter')
    wait_text(page, '.cf-portfolio', "'<b>SYN</b>' is not a coin ticker")
    assert page.locator('.cf-portfolio b').count() == 0
    page.fill('.cf-holdings input', 'SYN nan'); page.press('.cf-holdings input', 'Enter')
    wait_text(page, '.cf-portfolio', 'must be a finite number')
    page.fill('.cf-alerts input', '<img src=x onerror=alert(1)>'); page.press('.cf-alerts input', 'Enter')
    wait_text(page, '.cf-alert-table', "cannot read the alert threshold '<img src=x onerror=alert(1)>'")
    assert page.locator('.cf-alert-table img').count() == 0

def test_kernels_stay_capped_the_page_reports_faults_and_sigterm_stops_everything(artifacts, tmp_path):
    "Ten visits (the first in Chromium when it is here, the others bare GETs) never hold more kernels than the cap."
    cap, loads = 3, 10
    sync_playwright = browser_or_none()
    with dashboard(artifacts, tmp_path, '--max-kernels', str(cap), '--preheat', '1') as (proc, port, log):
        counts, rss = [], []
        def sample():
            counts.append(len(kernels(proc.pid)))
            rss.append(rss_mb([psutil.Process(proc.pid), *tree(proc.pid)]))
        pw = sync_playwright().start() if sync_playwright else None
        try:
            if pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={'width': 1300, 'height': 900})
                page.goto(f"http://127.0.0.1:{port}/", timeout=120_000, wait_until='commit')
                check_page_faults(page)
            else:
                print('\nno Chromium or playwright: the page checks are left out')
                assert 'cryptoforecast dashboard' in get_page(port)
            sample()
            for _ in range(loads - 1):   # each starts a kernel nobody connects to
                assert 'cryptoforecast dashboard' in get_page(port)
                sample()
            time.sleep(2)   # the pool refills after the last visit
            sample()
            if pw:   # the open tab kept its kernel: the abandoned ones made room
                page.click('.cf-horizon button:has-text("30 days")')
                wait_text(page, '.cf-skill', 'Skill at 30 day')
                browser.close()
        finally:
            if pw: pw.stop()
        server = rss_mb([p for p in tree(proc.pid) if p not in kernels(proc.pid)])
        print(f"\nkernels after each of {loads} loads: {counts}; RSS of the command and all it started (MB): "
              f"{', '.join(f'{r:.0f}' for r in rss)}; Voila alone {server:.0f} MB")
        assert max(counts) <= cap, counts
        assert rss[-1] <= 1.25 * max(rss[:cap]), rss   # bounded: no growth once the cap is reached
        seconds = stop_and_time(proc, port, signal.SIGTERM)
        print(f"SIGTERM: port free and every process gone after {seconds:.1f} s")
        assert seconds < 10 and proc.returncode == 0
    out = log.read_text()
    assert 'dashboard stopped' in out and 'kernels running (at most 3): shutting down kernel' in out, out[-3000:]

def test_idle_kernels_are_culled_and_sigint_stops_everything(artifacts, tmp_path):
    with dashboard(artifacts, tmp_path, '--preheat', '1', '--idle-timeout', '2') as (proc, port, log):
        for _ in range(2): get_page(port)   # two kernels nobody connects to
        t0 = time.monotonic()
        done = lambda: log.read_text().count('seconds of inactivity') >= 2 and len(kernels(proc.pid)) == 1
        while not done() and time.monotonic() - t0 < 20: time.sleep(0.25)
        culled, left = log.read_text().count('seconds of inactivity'), len(kernels(proc.pid))
        print(f"\n{culled} idle kernels culled {time.monotonic() - t0:.1f} s after the last visit; {left} left (the pre-heated one)")
        assert culled == 2 and left == 1, (culled, left)
        seconds = stop_and_time(proc, port, signal.SIGINT)
        print(f"SIGINT: port free and every process gone after {seconds:.1f} s")
        assert seconds < 10 and proc.returncode == 0
    assert 'dashboard stopped' in log.read_text()

def test_voila_stops_when_the_command_is_killed(artifacts, tmp_path):
    "Even `kill -9` of the command, which can clean nothing up, takes the server and its kernel down with it (Linux)."
    if not sys.platform.startswith('linux'): pytest.skip('PR_SET_PDEATHSIG is Linux only')
    with dashboard(artifacts, tmp_path, '--preheat', '1') as (proc, port, log):
        t0 = time.monotonic()
        while not kernels(proc.pid) and time.monotonic() - t0 < 30: time.sleep(0.1)   # the pre-heated kernel
        started = tree(proc.pid)
        assert kernels(proc.pid)
        proc.kill()
        t0 = time.monotonic()
        while listening(port) or any(still_alive(p) for p in started):
            assert time.monotonic() - t0 < 10, 'Voila or its kernel outlived the killed command by 10 s'
            time.sleep(0.1)
        print(f"\nkill -9: port free and Voila and its kernel gone after {time.monotonic() - t0:.1f} s")
