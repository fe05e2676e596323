"""project/docs_site.py and `skewless docs generate`: the catalog as a static site, checked as data and in a real
headless Chromium (Debian's, through its chromedriver): search, a feature's page, its lineage followed to a
source column, a model's graph, and no console error."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from skewless import FeatureStore

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project built and tested (no online store), monitored, and its site generated."""
    root = tmp_path_factory.mktemp("docs") / "example_project"
    shutil.copytree(Path(__file__).resolve().parent.parent / "example_project", root,
                    ignore=shutil.ignore_patterns("target", "__pycache__"))
    schema = root / "models" / "schema.yml"  # a description that tries to end the data's script tag
    schema.write_text(schema.read_text().replace("Sum of the user's payment amounts over 7 days.",
                                                 '"Sum over 7 days </script><script>window.hacked=1</script>"'))
    with FeatureStore(root) as store:
        runs, tests = store.build(online=False)
        assert runs.ok and tests.ok
        store.monitor(current_window="10d", check_online=False)
        return store.docs_generate()


def _data(path: Path) -> dict:
    text = path.read_text()
    raw = re.search(r'<script id="catalog-data" type="application/json">(.*?)</script>', text, re.S).group(1)
    return json.loads(raw.replace("<\\/", "</"))


def test_the_site_holds_every_model_and_feature_with_lineage_tests_and_monitoring(site):
    data = _data(site)
    with FeatureStore(site.parents[2]) as store:
        compiled = store.compile(write=False)
    assert {m["name"] for m in data["models"]} == set(compiled.nodes)
    assert {f["name"] for f in data["features"]} == set(compiled.features())
    feature = next(f for f in data["features"] if f["name"] == "user__amount_sum__7d")
    assert feature["lineage"]["windows"] == ["7d"] and "fraud_training" in feature["datasets"]
    assert {t["status"] for t in feature["tests"]} == {"pass"} and feature["monitor"]["bins"]["reference"]
    model = next(m for m in data["models"] if m["name"] == "user_spend")
    assert "rolling(" in model["sql"] and "OVER" in model["compiled"] and model["parents"] == ["stg_transactions"]
    assert {"name": "shop.transactions.amount"}.items() <= next(
        s for s in data["sources"] if s["name"] == "shop.transactions.amount").items()
    # the hostile description is data, not markup: only the page's own two scripts end
    assert site.read_text().count("</script") == 2


def _browser():
    if not (CHROMIUM.exists() and DRIVER.exists()):
        if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium and chromedriver are missing and SKEWLESS_REQUIRE_SERVICES=1")
        pytest.skip("no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(DRIVER)), options=options)  # Debian's driver: nothing downloaded


def test_search_a_feature_and_follow_its_lineage_in_a_real_browser(site):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()

    def settled(read):  # the page redraws after each click (hashchange): wait until it shows what is asked
        return WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(read)

    def heading(text: str) -> None:
        settled(lambda d: d.find_element(By.TAG_NAME, "h1").text == text)

    def results() -> list[str]:
        return [row.find_element(By.TAG_NAME, "a").text
                for row in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")]

    try:
        driver.get(site.as_uri())
        watched = driver.find_element(By.ID, "monitoring")  # the monitor's section: a row and plots per feature
        assert "user__amount_sum__7d" in watched.text and watched.find_elements(By.CSS_SELECTOR, "svg rect")
        driver.find_element(By.ID, "search").send_keys("amount sum 7d")
        settled(lambda d: results() == ["merchant__amount_sum__7d", "user__amount_sum__7d"])
        driver.find_element(By.LINK_TEXT, "user__amount_sum__7d").click()
        heading("user__amount_sum__7d")
        assert "</script>" in driver.find_element(By.CSS_SELECTOR, "main > p").text  # shown as text
        lineage = driver.find_element(By.ID, "lineage")
        assert "window 7d" in lineage.text and "window key" in lineage.text and "filter" in lineage.text
        lineage.find_element(By.LINK_TEXT, "shop.transactions.amount").click()
        heading("shop.transactions.amount")
        assert "user__amount_sum__7d" in driver.find_element(By.TAG_NAME, "main").text
        driver.find_element(By.LINK_TEXT, "user__amount_sum__7d").click()
        heading("user__amount_sum__7d")
        driver.find_element(By.LINK_TEXT, "user_spend").click()
        heading("user_spend")
        boxes = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "svg text")]
        assert boxes == ["stg_transactions", "user_spend", "payment_context"]
        assert driver.execute_script("return window.hacked === undefined")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
