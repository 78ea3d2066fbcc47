"""plots/transfer_plots.ipynb in a real browser, as a person uses it: the venv's Jupyter Notebook on loopback with
the kit's kernel, Debian's Chromium driven by chromedriver through Selenium, Run -> Run All Cells from the menu, and
Figure 2 on the page. The notebook runs from a copy in the test's temp dir: the UI autosaves, and outputs must
never land in the repository's notebook. Server and browser are stopped by their own pids."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from xfer.logs import parser
from xfer.paths import RESULTS_DIR

from jupyter_fixture import descendants, free_port, jupyter_env, kill_left, wait_gone, wait_http

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "plots" / "transfer_plots.ipynb"
JUPYTER = Path(sys.executable).parent / "jupyter-notebook"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")  # Debian's; setup installs them
WINDOW = (1400, 1100)

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path, fetched_cache):
    """(base URL, token, folder): Jupyter Notebook on a free loopback port serving a copy of the notebook."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    port, token = free_port(), os.urandom(16).hex()
    # As a user after `xfer paper`: nothing set, the paper's logs fetched into the kit's cache.
    env = jupyter_env(tmp_path, JUPYTER_TOKEN=token, XFER_CACHE=str(fetched_cache))
    env.pop("XFER_RESULTS", None)
    env.pop("XFER_PAPER_DIR", None)
    args = [str(JUPYTER), "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={folder}"] + (["--allow-root"] if os.getuid() == 0 else [])
    with open(tmp_path / "jupyter.log", "wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/api/status?token={token}", proc)
        yield base, token, folder
    finally:
        below = descendants(proc.pid)  # the kernel
        proc.send_signal(signal.SIGTERM)  # Jupyter shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        left = wait_gone(below, 10)
        kill_left(left)
        assert not left, f"kernel processes {left} outlived the server; log: {tmp_path / 'jupyter.log'}"


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium driven by Debian's chromedriver; quit and checked gone by pid afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    assert not missing, f"{missing} missing: `make setup` installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    if os.getuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver_pid = service.process.pid
    try:
        yield driver
    finally:
        pids = [driver_pid] + descendants(driver_pid)  # chromedriver, Chromium and its helpers
        driver.quit()
        left = wait_gone(pids, 15)
        kill_left(left)
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
        assert not left, f"browser processes {left} outlived driver.quit()"


def choose_from_menu(driver, wait, menu, item):
    """Click a menu of the menu bar, then one of its items, by their labels (e.g. Run -> Run All Cells)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f"//li[contains(@class, 'lm-MenuBar-item')][.//div[normalize-space()='{menu}']]"))).click()
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f"//li[contains(@class, 'lm-Menu-item')][.//div[normalize-space()='{item}']]"))).click()


def prompts(driver) -> list:
    from selenium.webdriver.common.by import By
    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputArea-prompt")]


def saved_outputs(path):
    """The code cells' outputs of the notebook file, or None while it is not a whole notebook yet."""
    try:
        cells = nbformat.read(path, as_version=4).cells
    except Exception:  # empty or half-written: read again on the next poll
        return None
    return [out for cell in cells if cell.cell_type == "code" for out in cell.outputs] or None


def test_runs_all_cells_in_chromium_and_shows_figure2(server, browser, tmp_path, fetched_cache):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    base, token, folder = server
    browser.get(f"{base}/notebooks/{NOTEBOOK.name}?token={token}")
    wait = WebDriverWait(browser, 120)
    kernel_name = lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-KernelName")]  # noqa: E731
    wait.until(lambda d: kernel_name(d) not in ([], [""], ["No Kernel"]), "the kernel did not start")
    assert kernel_name(browser) == ["Python 3 (xfer)"]
    cells = len(nbformat.read(NOTEBOOK, as_version=4).cells)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")) == cells)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"))
    choose_from_menu(browser, wait, "Run", "Run All Cells")
    code = len([c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"])
    WebDriverWait(browser, 600, poll_frequency=1).until(
        lambda d: len(prompts(d)) == code and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts(d)))
    numbers = [int(p[1:-2]) for p in prompts(browser)]
    assert numbers == list(range(1, code + 1)), numbers  # every cell ran, in order, once

    assert not browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type="
                                                      "'application/vnd.jupyter.stderr']")
    figure2 = browser.find_element(By.XPATH, "//div[contains(@class, 'jp-OutputArea-child')]"
                                             "[.//pre[contains(., 'result_transfer.png')]]"
                                             "/following-sibling::div[1]//img")
    loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", figure2)
    assert loaded and loaded > 300, f"Figure 2's image did not load (natural width {loaded})"
    images = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    assert len(images) >= 7  # six figures and the training curves

    saved = folder / NOTEBOOK.name
    before = saved.stat().st_mtime_ns
    choose_from_menu(browser, wait, "File", "Save Notebook")
    # Jupyter's atomic_writing writes the file in place (after a backup copy): wait for a whole notebook.
    outputs = wait.until(lambda d: saved.stat().st_mtime_ns != before and saved_outputs(saved))
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs)
    if not any(parser.find_logs(folder) for folder in parser.net_dirs(RESULTS_DIR)):  # a clone with no runs of its own
        assert f"results: {fetched_cache / 'paper' / 'results'} (the paper's logs, fetched by `xfer paper`)" in text
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 7

    # The figures cell at the top of the window, its first figure (Figure 2, points) below it.
    cell = figure2.find_element(By.XPATH, "ancestor::div[contains(@class, 'jp-CodeCell')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", cell)
    time.sleep(0.5)
    shot = tmp_path / "notebook.png"
    assert browser.save_screenshot(str(shot))
    viewport = tuple(browser.execute_script("return [window.innerWidth, window.innerHeight]"))
    from PIL import Image
    with Image.open(shot) as image:
        assert image.size == viewport and viewport[0] == WINDOW[0] and viewport[1] > WINDOW[1] // 2
        assert len(image.convert("L").getcolors(1 << 16)) > 50, "a blank screenshot"
    assert shot.stat().st_size > 50_000, shot.stat().st_size
    if os.environ.get("XFER_SCREENSHOT"):  # how docs/img/notebook_figure2.png was made
        shutil.copy(shot, os.environ["XFER_SCREENSHOT"])
