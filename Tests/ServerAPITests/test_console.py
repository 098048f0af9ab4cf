"""The web console in a real browser (headless Chromium through Selenium), and its security:
nothing under /console/ is shown without a session, the cookie is locked down, a cross-site stop
is refused, and markup in logs is shown as text."""
import http.client
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import CI, KEY_ID, SECRET, TEST_MODEL, create_model, job_request, make_inputs, wait_for

ROOT = Path(__file__).resolve().parents[2]
# Where the screenshots go (the current ones are copied to docs/ by hand).
SHOTS = Path(os.environ.get("BATCHFORM_SCREENSHOTS", ROOT / "test-artifacts"))


def chromium():
    """A headless Chromium driven by Selenium, or a skip (a failure in CI, which installs both)."""
    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        driver_path = None
    if not driver_path or not browser:
        message = "the console's browser tests need chromium, chromium-driver and selenium"
        if CI:
            pytest.fail(message + " (.ci/run installs them)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    return answer.status, dict(answer.getheaders()), answer.read().decode()


def sign_in(server):
    form = urllib.parse.urlencode({"access_key_id": KEY_ID, "secret_access_key": SECRET})
    status, headers, _ = request(server, "POST", "/console/login", form,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    return headers["Set-Cookie"]


def slow_job(client, tmp_path, name, delay_ms=150, files=3, lines=40):
    make_inputs(tmp_path / name, files=files, lines=lines)
    create_model(client, f"{name}-model", env={"TEST_FIXED_DELAY_MS": str(delay_ms), "TEST_LOG_REQUESTS": "1"})
    client.create_transform_job(**job_request(
        name, f"{name}-model", tmp_path / name, tmp_path / f"{name}-out", BatchStrategy="SingleRecord"
    ))


def settled(read, attempts=20):
    """`read()` of elements a refresh may replace under it: tried again when one goes stale."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(attempts):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.2)
    return read()


def test_the_console_in_a_browser(server, tmp_path):
    client = server.client()
    # A finished job, a failed one, then a running one and one to stop from the page.
    make_inputs(tmp_path / "done-in", files=2, lines=10)
    create_model(client, "quick")
    client.create_transform_job(**job_request("finished-job", "quick", tmp_path / "done-in", tmp_path / "done-out"))
    wait_for(client, "finished-job")
    (tmp_path / "bad-in").mkdir()
    (tmp_path / "bad-in" / "a.txt").write_text("FAIL\n")
    client.create_transform_job(**job_request("failing-job", "quick", tmp_path / "bad-in", tmp_path / "bad-out"))
    wait_for(client, "failing-job")
    slow_job(client, tmp_path, "running-job")
    slow_job(client, tmp_path, "job-to-stop", delay_ms=300)

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium()
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(server.url + "/console/")
        assert "running-job" not in browser.page_source  # nothing before signing in
        browser.find_element(By.NAME, "access_key_id").send_keys(KEY_ID)
        browser.find_element(By.NAME, "secret_access_key").send_keys("not-the-secret")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        error = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".error"), "no sign-in error shown")
        assert "do not match" in error[0].text
        browser.find_element(By.NAME, "access_key_id").send_keys(KEY_ID)
        browser.find_element(By.NAME, "secret_access_key").send_keys(SECRET)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-job='running-job'] progress"),
                   "no progress bar for the running job")
        row = settled(lambda: browser.find_element(By.CSS_SELECTOR, "tr[data-job='running-job']").text)
        assert "InProgress" in row and "records" in row and "objects" in row, row
        statuses = settled(lambda: {r.get_attribute("data-job"): r.find_element(By.CSS_SELECTOR, ".status").text
                                    for r in browser.find_elements(By.CSS_SELECTOR, "tr.job")})
        assert statuses["finished-job"] == "Completed" and statuses["failing-job"] == "Failed", statuses
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "console-jobs.png"))

        browser.find_element(By.LINK_TEXT, "running-job").click()
        wait.until(lambda b: "test model: request" in settled(lambda: b.find_element(By.ID, "logs").text),
                   "no model log lines")
        objects = settled(lambda: [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#objects tbody tr")])
        assert len(objects) == 3 and all("/running-job/part-" in o for o in objects), objects
        assert browser.find_elements(By.CSS_SELECTOR, "#settings dt")
        time.sleep(2.5)  # a few samples for the chart
        browser.save_screenshot(str(SHOTS / "console-job.png"))

        browser.get(server.url + "/console/jobs/job-to-stop")
        stop = wait.until(expected_conditions.element_to_be_clickable((By.ID, "stop")), "no Stop button")
        stop.click()
        browser.switch_to.alert.accept()  # the page asks first
        try:
            wait.until(lambda b: settled(lambda: b.find_element(By.ID, "status").text) in ("Stopping", "Stopped"))
        except Exception:
            print("PAGE", browser.current_url, browser.page_source[:3000])
            raise
        wait_for(client, "job-to-stop")
        browser.get(server.url + "/console/jobs/job-to-stop")
        assert browser.find_element(By.ID, "status").text == "Stopped"
        assert client.describe_transform_job(TransformJobName="job-to-stop")["TransformJobStatus"] == "Stopped"

        browser.get(server.url + "/console/jobs/failing-job")
        assert "FAIL" in browser.find_element(By.ID, "failure").text
    finally:
        browser.quit()


ROUTES = ["/console/", "/console/jobs/secret-job", "/console/api/jobs", "/console/api/jobs/secret-job"]


def test_nothing_is_revealed_without_a_session(server, tmp_path):
    client = server.client()
    make_inputs(tmp_path / "in", files=1, lines=2)
    create_model(client, "m")
    client.create_transform_job(**job_request("secret-job", "m", tmp_path / "in", tmp_path / "out"))
    wait_for(client, "secret-job")
    for path in ROUTES:
        for cookie in [None, "batchform_session=forged"]:
            status, headers, body = request(server, "GET", path, headers={"Cookie": cookie} if cookie else {})
            assert "secret-job" not in body, path
            assert status in (200, 303, 401), (path, status)
            if status == 200:
                assert 'name="access_key_id"' in body  # the sign-in form, nothing else
            assert "Content-Security-Policy" in headers and headers["X-Content-Type-Options"] == "nosniff"
    status, _, _ = request(server, "POST", "/console/jobs/secret-job/stop", "form_token=x",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    cookie = sign_in(server)
    assert "secret-job" in request(server, "GET", "/console/api/jobs", headers={"Cookie": cookie.split(";")[0]})[2]


def test_the_session_cookie_is_locked_down_and_sign_out_revokes_it(server):
    cookie = sign_in(server)
    flags = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and any(f.startswith("Max-Age=") for f in flags)
    session = {"Cookie": cookie.split(";")[0]}
    assert request(server, "GET", "/console/api/jobs", headers=session)[0] == 200
    request(server, "POST", "/console/logout", "", {**session, "Content-Type": "application/x-www-form-urlencoded"})
    assert request(server, "GET", "/console/api/jobs", headers=session)[0] == 401


def test_a_cross_site_stop_is_refused(server, tmp_path):
    client = server.client()
    slow_job(client, tmp_path, "target", delay_ms=500, files=1, lines=20)
    session = {"Cookie": sign_in(server).split(";")[0], "Content-Type": "application/x-www-form-urlencoded"}
    page = request(server, "GET", "/console/jobs/target", headers=session)[2]
    token = page.split('name="form_token" value="', 1)[1].split('"', 1)[0]
    for headers, body in [
        ({**session, "Origin": "http://evil.example"}, f"form_token={token}"),  # another site, even with the token
        (session, "form_token=guessed"),  # the right origin without the session's token
    ]:
        assert request(server, "POST", "/console/jobs/target/stop", body, headers)[0] == 403
    assert client.describe_transform_job(TransformJobName="target")["TransformJobStatus"] == "InProgress"
    origin = {**session, "Origin": server.url}
    assert request(server, "POST", "/console/jobs/target/stop", f"form_token={token}", origin)[0] == 303
    wait_for(client, "target")


def test_markup_in_logs_and_names_is_shown_as_text(server, tmp_path):
    client = server.client()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("<script>alert(1)</script>\n")
    create_model(client, "m", env={"TEST_LOG_REQUESTS": "1"})
    client.create_transform_job(**job_request("html-job", "m", tmp_path / "in", tmp_path / "out",
                                              Environment={"NOTE": "<img src=x onerror=alert(2)>"}))
    wait_for(client, "html-job")
    log = Path(server.data_dir) / "jobs" / "html-job" / "logs" / "instance-1.log"
    with open(log, "a") as f:
        f.write("<script>alert(3)</script>\n")
    session = {"Cookie": sign_in(server).split(";")[0]}
    page = request(server, "GET", "/console/jobs/html-job", headers=session)[2]
    assert "<script>alert(3)</script>" not in page and "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
