"""The console (/_upstack/console) in a real headless Chromium against a real `upstack serve`, driven by Selenium
through Debian's chromium and chromium-driver (.ci/run installs them when missing): the overview loads, a
lookup through the form shows the profile, and an export job created through the API appears after a reload;
and /docs, whose Swagger UI renders every operation from assets this server serves (the browser cannot resolve
any other host) and runs "Try it out" with the prefilled AEP headers.

Off CI the test skips when the browser is absent; on CI (CI=true) that is a failure. With
UPSTACK_CONSOLE_SCREENSHOTS=<dir> it saves the overview and lookup pages there as PNG (1280x800), which is how
docs/console/*.png are made."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import ON_CI

pytestmark = pytest.mark.live

CHROMIUM = os.environ.get("UPSTACK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("UPSTACK_CHROMEDRIVER", "/usr/bin/chromedriver")
JOBS = "/data/core/ups/export/jobs"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package (dev extra) is not installed"
    absent = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).is_file() or shutil.which(p))]
    if absent:
        return f"{', '.join(absent)} not found: apt-get install chromium chromium-driver"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _missing()
    if problem:
        if ON_CI:
            pytest.fail(f"The console's browser test cannot run on CI: {problem} (.ci/run installs them).")
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No host but this machine resolves: a page that needs a CDN (or any outside asset) cannot render.
    for arg in ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost", "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    # A 1280x800 viewport (the window's own size includes what a headed browser would draw around the page).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def _shoot(driver, name: str) -> None:
    target = os.environ.get("UPSTACK_CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(Path(target) / name))


def _wait(driver, css: str, timeout: float = 30.0):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_console_in_headless_chromium(browser, upstack):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    crm = upstack.dataset("CRM profiles")
    batch = upstack.ingest(crm, [
        {"identityMap": {"Email": [{"id": "ann@example.com", "primary": True}]},
         "person": {"name": {"firstName": "Ann", "lastName": "Lee"}}, "homeAddress": {"city": "Basel"}},
        {"identityMap": {"Email": [{"id": "bob@example.com", "primary": True}]},
         "person": {"name": {"firstName": "Bob", "lastName": "Ray"}}},
    ])
    assert batch["status"] == "success"
    target = upstack.dataset("Profile Data Export", schema="union")
    tenant = urlencode({"org": upstack.org, "sandbox": upstack.sandbox})
    console = f"{upstack.url}/_upstack/console"

    # The overview loads, with the dataset and its successful batch.
    browser.get(f"{console}?{tenant}")
    _wait(browser, "h3.dataset")
    assert upstack.org in browser.title
    assert "CRM profiles" in browser.find_element(By.CSS_SELECTOR, f'h3.dataset[data-id="{crm}"]').text
    assert browser.find_element(By.CSS_SELECTOR, "table.batches td.status").text == "success"
    assert browser.find_elements(By.CSS_SELECTOR, "#merge-policies tr")  # the tenant's default policy

    # A lookup through the form (typed and submitted as a user would) shows the merged profile.
    browser.find_element(By.LINK_TEXT, "Profile lookup").click()
    _wait(browser, "#lookup-form")
    browser.find_element(By.ID, "namespace").send_keys("Email")
    browser.find_element(By.ID, "identity").send_keys("ann@example.com")
    Select(browser.find_element(By.ID, "merge-policy")).select_by_value("timestampOrdered-none-mp")
    browser.find_element(By.ID, "lookup").click()
    entity = _wait(browser, "#entity").text
    assert '"firstName": "Ann"' in entity and "ann@example.com" in entity and "Basel" in entity
    _shoot(browser, "lookup.png")
    # An unknown identity shows the 404 message instead.
    browser.find_element(By.ID, "identity").clear()
    browser.find_element(By.ID, "identity").send_keys("nobody@example.com")
    browser.find_element(By.ID, "lookup").click()
    assert _wait(browser, "#problem").text and not browser.find_elements(By.ID, "entity")

    # A job created through the API appears on the overview after a reload, and succeeds there.
    browser.get(f"{console}?{tenant}")
    _wait(browser, "h3.dataset")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.job")
    job = upstack.request("POST", JOBS, json_body={"destination": {"datasetId": target},
                                                   "schema": {"name": "_xdm.context.profile"}}).json()
    browser.refresh()
    row = _wait(browser, f'tr.job[data-id="{job["id"]}"]')
    assert row.find_element(By.CSS_SELECTOR, "td.status").text in ("NEW", "PROCESSING", "SUCCEEDED")
    upstack.wait_for_job(job["id"], status="SUCCEEDED")
    deadline = time.monotonic() + 30
    while True:
        browser.refresh()
        row = _wait(browser, f'tr.job[data-id="{job["id"]}"]')
        if row.find_elements(By.CSS_SELECTOR, "a.download") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert row.find_element(By.CSS_SELECTOR, "td.status").text == "SUCCEEDED"
    _shoot(browser, "overview.png")
    # Its output file's page lists the Parquet part with a download link (the Data Access file).
    row.find_element(By.CSS_SELECTOR, "a.download").click()
    part = _wait(browser, "#parts a.download")
    assert "/download?" in part.get_attribute("href") and "/data/foundation/export/files/" in browser.page_source

    # A control form posted by the browser itself passes the same-origin check and takes effect.
    browser.get(f"{console}/controls?{tenant}")
    form = _wait(browser, "#pacing-form")
    Select(form.find_element(By.NAME, "mode")).select_by_value("manual")
    form.find_element(By.CSS_SELECTOR, "button").click()
    # Wait for the page the form redirects to: the old page's readyState is "complete" until it is replaced.
    done = _wait(browser, "#done")
    assert "pacing" in done.text, (browser.current_url, browser.page_source[:2000])
    pacing = upstack.request("GET", "/_upstack/controls", aep=False).json()["tenantPacing"]
    assert [(p["org"], p["mode"]) for p in pacing] == [(upstack.org, "manual")]
    upstack.clear_controls()


def test_docs_render_offline_and_try_it_out_works(browser, upstack):
    from selenium.webdriver.common.by import By

    served = upstack.request("GET", "/openapi.json", aep=False).json()
    operations = sum(1 for ops in served["paths"].values() for m in ops if m in ("get", "put", "post", "patch",
                                                                                  "delete", "head"))
    browser.get(f"{upstack.url}/docs")
    _wait(browser, ".opblock")
    deadline = time.monotonic() + 30
    while len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) < operations and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) == operations
    # Every asset the page loaded came from this server.
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(upstack.url) for u in loaded), loaded
    _shoot(browser, "docs.png")

    # "Try it out" on GET /export/jobs: the four AEP headers are prefilled, so the call passes the gateway.
    block = browser.find_element(By.CSS_SELECTOR, "#operations-export_jobs-list_jobs_data_core_ups_export_jobs_get")
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    _wait(browser, "#operations-export_jobs-list_jobs_data_core_ups_export_jobs_get .try-out__btn").click()
    _wait(browser, "#operations-export_jobs-list_jobs_data_core_ups_export_jobs_get .execute").click()
    status = _wait(browser, "#operations-export_jobs-list_jobs_data_core_ups_export_jobs_get "
                            ".live-responses-table .response .response-col_status")
    assert status.text.strip().startswith("200"), status.text
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", status)
    _shoot(browser, "docs-try-it-out.png")
