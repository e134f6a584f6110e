"""The memory inspector in a real browser: Debian's headless Chromium driven by Selenium against a real
`memory-service serve` (SQLite, FAISS, the packaged embedder) with an API key. Screenshots of every page
go to tests/artifacts/ui/ (git-ignored; MEMORY_SERVICE_UI_ARTIFACTS overrides)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from memory_service.auth import create_key
from memory_service.settings import Settings
from stores.sql.store import SqlStore
from tests.server import running_server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("MEMORY_SERVICE_UI_ARTIFACTS", Path(__file__).parents[1] / "artifacts" / "ui"))
LOG = [
    {"event_id": "ui-1", "user_id": "ann", "role": "user", "speaker": "Ann", "content": "I adopted a cat named Miso yesterday.", "timestamp": "2024-03-14T10:00:00Z"},
    {"event_id": "ui-2", "user_id": "ann", "role": "assistant", "content": "Congratulations! Miso is a lovely name.", "timestamp": "2024-03-14T10:00:05Z"},
    {"event_id": "ui-3", "user_id": "ann", "role": "user", "speaker": "Ann", "content": "I start my new job as a nurse in Porto on 2 April.", "timestamp": "2024-03-15T09:00:00Z"},
    {"event_id": "ui-4", "user_id": "ann", "role": "tool", "tool": {"name": "get_weather", "arguments": {"city": "Porto"}, "result": {"temp_c": 17}}, "timestamp": "2024-03-15T09:01:00Z"},
    {"event_id": "zed-1", "user_id": "zed", "role": "user", "speaker": "Zed", "content": "I collect vintage typewriters.", "timestamp": "2024-03-16T12:00:00Z"},
]

Server = tuple[str, httpx.Client, str]  # base URL, a REST client with the key, the key

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)), reason="needs Debian's chromium and chromium-driver"
)


async def _make_key(data_dir: Path) -> str:
    store = await SqlStore.open(Settings(data_dir=data_dir).sql_url)
    try:
        return (await create_key(store, "inspector")).key
    finally:
        await store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("ui") / "data"
    data_dir.mkdir()
    key = asyncio.run(_make_key(data_dir))
    with running_server(data_dir) as (url, _process), httpx.Client(
        base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        assert client.post("/v1/events", json={"events": LOG, "wait": True}).status_code == 202
        deadline = time.monotonic() + 60  # let consolidation settle, so pages and REST agree
        while (jobs := client.get("/v1/jobs").json())["queued"] + jobs["running"] and time.monotonic() < deadline:
            time.sleep(0.3)
        yield url, client, key


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[WebDriver]:
    url, _client, key = server
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=ChromeService(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(f"{url}/ui/")
        assert "/ui/login" in driver.current_url  # keys exist: the inspector asks for one
        log_in(driver, key)
        yield driver
    finally:
        driver.quit()


def log_in(driver: WebDriver, key: str) -> None:
    driver.find_element(By.ID, "key").send_keys(key)
    submit(driver, "#login")


def shot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait_for(driver: WebDriver, css: str) -> str:
    return WebDriverWait(driver, 20).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css))).text


def submit(driver: WebDriver, css: str) -> None:
    """Click a button that loads a new page, and wait until the old page is gone."""
    old = driver.find_element(By.TAG_NAME, "main")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 20).until(ec.staleness_of(old))


def confirm(driver: WebDriver, accept: bool = True) -> None:
    WebDriverWait(driver, 10).until(ec.alert_is_present())
    alert = driver.switch_to.alert
    alert.accept() if accept else alert.dismiss()


def test_a_wrong_key_is_refused(browser: WebDriver, server: Server) -> None:
    url, _client, _key = server
    browser.get(f"{url}/ui/login")
    log_in(browser, "ms_000000000000_not-a-real-key")
    assert wait_for(browser, "#login-error") == "unknown or revoked API key"
    shot(browser, "login-refused")
    browser.get(f"{url}/ui/")  # the good key from before is still the session's
    assert browser.find_element(By.ID, "tenant").text == "inspector"


def test_scopes_page_counts_what_rest_counts(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    browser.get(f"{url}/ui/")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")][:6] for tr in browser.find_elements(By.CSS_SELECTOR, "#scopes tbody tr")]
    expected = [[s["user_id"] or "—", s["agent_id"] or "—", s["session_id"] or "—", str(s["events"]), str(s["units"]), str(s["valid_units"])]
                for s in client.get("/v1/scopes").json()["scopes"]]
    shot(browser, "scopes")
    assert rows == expected and rows[0][:4] == ["ann", "—", "—", "4"]


def test_units_page_lists_and_filters(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    browser.get(f"{url}/ui/")
    submit(browser, "#scopes a[href^='/ui/units']")
    texts = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#units td.text")]
    assert texts == [u["text"] for u in client.get("/v1/memories", params={"user_id": "ann"}).json()["memories"]]
    assert any("Miso" in t for t in texts) and any("nurse" in t for t in texts)
    shot(browser, "units")
    browser.find_element(By.ID, "contains").send_keys("nurse")
    submit(browser, "#filters button")
    filtered = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#units td.text")]
    assert filtered and all("nurse" in t for t in filtered)
    Select(browser.find_element(By.ID, "kind")).select_by_visible_text("summary")
    submit(browser, "#filters button")
    assert wait_for(browser, "#no-units") == "No memory units match."


def test_unit_page_shows_provenance_and_history(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    cat = next(u for u in client.get("/v1/memories", params={"user_id": "ann"}).json()["memories"] if "Miso" in u["text"])
    browser.get(f"{url}/ui/units?user_id=ann")
    browser.find_element(By.LINK_TEXT, str(cat["id"])).click()
    WebDriverWait(browser, 20).until(ec.url_contains(f"/ui/units/{cat['id']}"))
    assert browser.find_element(By.ID, "unit-text").text == cat["text"]
    provenance = browser.find_element(By.CSS_SELECTOR, "details.event pre").text
    assert "I adopted a cat named Miso yesterday." in provenance and '"event_id": "ui-1"' in provenance
    assert "this memory" in browser.find_element(By.ID, "history").text
    shot(browser, "unit")


def test_playground_gives_the_context_rest_gives(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    body = {"query": "Where is my new job?", "user_id": "ann", "budget_tokens": 128, "format": "text"}
    expected = client.post("/v1/context", json=body).json()
    browser.get(f"{url}/ui/playground?user_id=ann")
    browser.find_element(By.ID, "query").send_keys(body["query"])
    budget = browser.find_element(By.ID, "budget_tokens")
    budget.clear()
    budget.send_keys("128")
    browser.find_element(By.ID, "run").click()
    assert wait_for(browser, "#context") == expected["context"].strip()
    assert "Porto" in expected["context"]
    chosen = browser.find_elements(By.CSS_SELECTOR, "#chosen tbody tr, #chosen tr:not(:first-child)")
    assert [r.find_element(By.TAG_NAME, "a").text for r in chosen] == [str(u["id"]) for u in expected["units"]]
    assert browser.find_element(By.ID, "empty").text == "false"
    assert "search" in browser.find_element(By.ID, "timings").text
    assert "dense" in browser.find_element(By.ID, "chosen").text
    browser.execute_script("window.scrollTo(0, 0)")
    shot(browser, "playground")
    browser.find_element(By.ID, "query").clear()
    browser.find_element(By.ID, "query").send_keys("What is the capital of Mongolia?")
    browser.find_element(By.ID, "run").click()
    WebDriverWait(browser, 20).until(lambda d: "Empty" in d.find_element(By.ID, "verdict").text)
    shot(browser, "playground-empty")


def test_jobs_page(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    browser.get(f"{url}/ui/jobs")
    jobs = client.get("/v1/jobs").json()
    assert "in-process queue" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "queue").text.startswith(f"queued {jobs['queued']}")
    assert browser.find_element(By.ID, "no-dead-letters").text == "No failed jobs."
    shot(browser, "jobs")


def test_erase_a_unit_after_confirming(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    # Its own user, so the other tests see the same data in any order.
    client.post("/v1/events", json={"events": [{"user_id": "eve", "role": "user", "content": "I keep bees on the roof."}], "wait": True})
    unit = client.get("/v1/memories", params={"user_id": "eve"}).json()["memories"][0]
    browser.get(f"{url}/ui/units/{unit['id']}")
    browser.find_element(By.ID, "erase").click()
    confirm(browser, accept=False)  # cancelled: nothing happens
    assert client.get(f"/v1/memories/{unit['id']}").status_code == 200
    browser.find_element(By.ID, "erase").click()
    confirm(browser)
    assert wait_for(browser, ".erased").startswith(f"Erased memory {unit['id']}.")
    assert not browser.find_elements(By.ID, "erase")  # nothing left to erase twice
    shot(browser, "unit-erased")
    assert client.get(f"/v1/memories/{unit['id']}").status_code == 404
    browser.get(f"{url}/ui/units?user_id=eve")
    assert str(unit["id"]) not in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#units td:first-child a")]


def test_erase_a_scope_shows_the_counts(browser: WebDriver, server: Server) -> None:
    url, client, _key = server
    browser.get(f"{url}/ui/")
    row = next(tr for tr in browser.find_elements(By.CSS_SELECTOR, "#scopes tbody tr") if tr.text.startswith("zed"))
    row.find_element(By.TAG_NAME, "button").click()
    confirm(browser)
    wait_for(browser, ".erased")
    counts = {c.get_attribute("data-name"): c.text for c in browser.find_elements(By.CSS_SELECTOR, ".erased .count")}
    assert counts["events_deleted"] == "1" and int(counts["units_deleted"]) >= 1
    assert "zed" not in [tr.text.split()[0] for tr in browser.find_elements(By.CSS_SELECTOR, "#scopes tbody tr")]
    shot(browser, "scope-erased")
    assert client.get("/v1/events", params={"user_id": "zed"}).json()["events"] == []
    assert "zed" not in [s["user_id"] for s in client.get("/v1/scopes").json()["scopes"]]
