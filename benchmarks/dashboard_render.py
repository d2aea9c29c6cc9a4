"""How long the Voila dashboard takes to draw, as a visitor sees it in headless Chromium.

Starts `cryptoforecast dashboard` on a free 127.0.0.1 port (pre-heated by default; `--no-preheat` passes `--preheat 0`), waits
`--warmup` seconds for the pre-heated kernel to run the page, then opens the page `--visits` times, `--gap` seconds
apart, and prints for each visit the seconds until the price chart is drawn and until every chart is. Requests that
leave 127.0.0.1 are counted (there should be none). It drives the page with the browser test's own helpers
(`tests/test_dashboard.py`). Needs a finished training run:

    .venv/bin/python benchmarks/dashboard_render.py --artifacts-dir artifacts [--visits 3] [--no-preheat]
"""
import argparse, os, signal, subprocess, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tests'))
from conftest import CHROMIUM, CHROMIUM_ARGS
from test_dashboard import free_port, open_dashboard, wait_port

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--artifacts-dir', default='artifacts')
    p.add_argument('--visits', type=int, default=3)
    p.add_argument('--gap', type=float, default=20, help='seconds between visits (the pool refills in between)')
    p.add_argument('--warmup', type=float, default=30, help='seconds to wait after the server listens')
    p.add_argument('--no-preheat', dest='preheat', action='store_false')
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright
    port = free_port()
    cmd = [str(Path(sys.executable).parent/'cryptoforecast'), 'dashboard', '--port', str(port), '--artifacts-dir', a.artifacts_dir]
    if not a.preheat: cmd += ['--preheat', '0']
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    outside = []
    try:
        t0 = time.time(); wait_port(port, proc, timeout=120)
        print(f"server listening after {time.time() - t0:.1f} s; preheat {'on' if a.preheat else 'off'}; warm-up {a.warmup:.0f} s")
        time.sleep(a.warmup)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for k in range(a.visits):
                t = time.time()
                page, price = open_dashboard(browser, f"http://127.0.0.1:{port}/", outside)
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000)
                print(f"visit {k + 1}: price chart {price:.1f} s, all charts {time.time() - t:.1f} s")
                page.close()
                if k + 1 < a.visits: time.sleep(a.gap)
            browser.close()
        print(f"requests outside 127.0.0.1: {len(outside)}" + (f" ({', '.join(sorted(set(outside)))})" if outside else ''))
    finally:
        os.kill(proc.pid, signal.SIGINT)   # Ctrl-C: the CLI stops Voila and its kernels
        try: proc.wait(timeout=60)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
    return 0

if __name__ == '__main__': sys.exit(main())
