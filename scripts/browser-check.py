#!/usr/bin/env python3
"""The dashboard in headless Chromium (issue 13), against a daemon scripts/browser-check.sh started.

Feeds known events, then, as a user in a browser: signs in (a wrong key first), opens the customer
page and compares its numbers with `tally usage --json` and `tally estimate --json`, checks each
chart has one bar per window with heights in the order of the quantities, switches to the hourly
charts, assigns a plan through the form and sees the estimate change (and equal `tally estimate`
again), adds a limit and sees its progress bar, checks a read-only session has no forms, posts a
form without its CSRF token (403), opens a portal page and is refused another customer's, checks
the pages load nothing from elsewhere and have no horizontal scroll at 390 px and 1280 px, and
saves the README's screenshots. Over plain HTTP (urllib, no redirects followed) it checks the
sign-in's statuses and cookie flags, and the Content-Security-Policy of every page, redirect and
error page.
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

CHECKS = 0
EXTRA_CUSTOMERS = 30


def ok(message):
    global CHECKS
    CHECKS += 1
    print(f"ok: {message}")


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(condition, message, detail=""):
    if not condition:
        fail(f"{message}{': ' + str(detail) if detail else ''}")
    ok(message)


def rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def events(now):
    """Known events in the current month: api_calls on up to three days, tokens, a second customer, and
    enough others for a second page of the customer list."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elapsed = (now - start).total_seconds()
    lines, number = [], 0
    recent = max(now - datetime.timedelta(seconds=30), start)  # in this period even in its first seconds
    # Three instants spread over the month so far (on different days unless it is the 1st or 2nd).
    for share, count in ((0.02, 5), (0.5, 20), (0.98, 12)):
        moment = start + datetime.timedelta(seconds=int(elapsed * share))
        for _ in range(count):
            number += 1
            lines.append({"id": f"bc-{number}", "customer": "cus_a", "meter": "api_calls", "time": rfc3339(moment)})
    for _ in range(3):
        number += 1
        lines.append({"id": f"bc-{number}", "customer": "cus_a", "meter": "tokens", "value": 1500,
                      "properties": {"model": "small", "billable": "true"}, "time": rfc3339(recent)})
    for _ in range(2):
        number += 1
        lines.append({"id": f"bc-{number}", "customer": "cus_b", "meter": "api_calls", "time": rfc3339(recent)})
    # Enough customers for a second page of the customer list (25 a page).
    for index in range(EXTRA_CUSTOMERS):
        number += 1
        lines.append({"id": f"bc-{number}", "customer": f"cus_page_{index:02}", "meter": "api_calls",
                      "time": rfc3339(recent)})
    return lines


def tally(args, *arguments):
    result = subprocess.run([args.tally, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"tally {' '.join(arguments)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def http(args, method, path, body=None, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{args.port}{path}", data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def foreign_references(body, base):
    """src, href, action and CSS url() values in a page that point at another origin."""
    found = re.findall(r"""(?:\bsrc|\bhref|\baction|\bposter|\bdata)\s*=\s*["']\s*((?:https?:)?//[^"']*)""", body, re.I)
    found += re.findall(r"""url\(\s*["']?\s*((?:https?:)?//[^)"']*)""", body, re.I)
    found += re.findall(r"""@import\s+["']?((?:https?:)?//[^"';]*)""", body, re.I)
    return [url for url in found if not url.startswith(base + "/")]


def check_headers(what, status, headers, body, base, portal=False):
    """Every dashboard and portal response: the CSP that allows only this server, nothing foreign."""
    policy = headers.get("Content-Security-Policy", "")
    if "default-src 'self'" not in policy:
        fail(f"{what} (status {status}): no Content-Security-Policy with default-src 'self'", policy or "no header")
    if portal and "frame-ancestors" not in policy:
        fail(f"{what} (status {status}): the portal's CSP has no frame-ancestors", policy)
    foreign = foreign_references(body, base)
    if foreign:
        fail(f"{what} (status {status}): references another origin", foreign)


def raw_sign_in(args, key, next_path):
    """The sign-in form over plain HTTP: its cookie and token, then a post of the key."""
    status, headers, body = http(args, "GET", f"/ui/sign-in?next={urllib.parse.quote(next_path, safe='')}")
    if status != 200:
        fail("GET /ui/sign-in", status)
    cookies = [c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or []]
    token = re.search(r'<input type="hidden" name="csrf" value="([^"]+)"', body)
    if not cookies or not token:
        fail("the sign-in page sets a cookie and carries a csrf field", (cookies, bool(token)))
    form = urllib.parse.urlencode({"csrf": token.group(1).replace("&amp;", "&"), "next": next_path, "key": key}).encode()
    return http(args, "POST", "/ui/sign-in", form, {"Cookie": "; ".join(cookies), "Content-Type": "application/x-www-form-urlencoded"})


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def browser(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    return driver


def navigate(driver, element, keys=None):
    """Clicks (or types keys into) an element and waits for the next page: a click returns before
    the navigation it starts has replaced the page."""
    driver.execute_script("window.browserCheckOldPage = true")  # gone with the old page's window
    if keys is None:
        element.click()
    else:
        element.send_keys(keys)
    # Mid-navigation Chromium may answer with errors other than a stale element: ask again.
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return window.browserCheckOldPage === undefined && document.readyState === 'complete'"))


def sign_in(driver, args, key, next_path="/ui"):
    driver.get(f"http://127.0.0.1:{args.port}{next_path}")
    expect("/ui/sign-in" in driver.current_url, f"an unsigned visit to {next_path} lands on the sign-in form", driver.current_url)
    field = driver.find_element(By.CSS_SELECTOR, "form#sign-in input[name=key]")
    expect(field.get_attribute("type") == "password", "the key field is a password field")
    expect(driver.find_elements(By.CSS_SELECTOR, 'form#sign-in input[type=hidden][name=csrf]') and
           driver.find_elements(By.CSS_SELECTOR, 'form#sign-in button[type=submit]'),
           "the sign-in form has a hidden csrf field and a submit button")
    field.send_keys(key)
    navigate(driver, field, Keys.ENTER)


def numbers(driver, selector, attribute):
    return [element.get_attribute(attribute) for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def check_chart(driver, meter, expected_windows, expected_quantities=None, expected_starts=None):
    svg = driver.find_element(By.CSS_SELECTOR, f'svg.usage-chart[data-meter="{meter}"]')
    bars = svg.find_elements(By.CSS_SELECTOR, "rect.bar")
    expect(len(bars) == expected_windows, f"the {meter} chart has one bar per window ({expected_windows})", len(bars))
    quantities = [float(bar.get_attribute("data-quantity")) for bar in bars]
    heights = [float(bar.get_attribute("height")) for bar in bars]
    if expected_quantities is not None:
        expect(quantities == expected_quantities, f"the {meter} bars' quantities are the events per window", quantities)
    if expected_starts is not None:
        starts = [parse_time(bar.get_attribute("data-start")) for bar in bars]
        expect(starts == expected_starts, f"the {meter} bars start at their windows ({rfc3339(expected_starts[0])} on)",
               [bar.get_attribute("data-start") for bar in bars[:3]])
    ordered = all((a < b) == (ha < hb) and (a == b) == (ha == hb) for a, ha in zip(quantities, heights) for b, hb in zip(quantities, heights))
    expect(ordered, f"the {meter} bars' heights are in the order of their quantities", list(zip(quantities, heights)))
    expect(all(h == 0 for q, h in zip(quantities, heights) if q == 0), f"the {meter} chart's empty windows are flat")
    expect(svg.find_elements(By.CSS_SELECTOR, "g.axis text"), f"the {meter} chart has axis labels")


def no_horizontal_scroll(driver, what):
    width, inner = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    expect(width <= inner, f"{what}: no horizontal scroll (content {width} px, window {inner} px)")


def full_page_screenshot(driver, path, width):
    for _ in range(5):  # the page's height depends on the window's: measure again after each resize
        height = driver.execute_script("return Math.ceil(document.documentElement.getBoundingClientRect().height) + 24")
        driver.set_window_size(width, min(max(height, 600), 8000))
        time.sleep(0.3)
        if driver.execute_script("return window.innerHeight") >= height - 1:
            break
    driver.save_screenshot(path)
    ok(f"screenshot {path} ({width} px wide)")


def main():
    parser = argparse.ArgumentParser()
    for name in ("tally", "work", "port", "admin-key", "read-key", "screenshots"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    store, config, socket = f"{args.work}/data", f"{args.work}/tally.yaml", f"{args.work}/tally.sock"
    base = f"http://127.0.0.1:{args.port}"

    now = datetime.datetime.now(datetime.timezone.utc)
    lines = events(now)
    with open(f"{args.work}/events.ndjson", "w") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    tally(args, "send", "--socket", socket, f"{args.work}/events.ndjson")
    with open(f"{args.work}/again.ndjson", "w") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines[:3]))
    sent_again = json.loads(tally(args, "send", "--socket", socket, "--json", f"{args.work}/again.ndjson"))
    expect(sent_again.get("duplicate") == 3, "events sent again are duplicates", sent_again)
    usage = json.loads(tally(args, "usage", "--customer", "cus_a", "--store", store, "--config", config, "--json"))
    estimate = json.loads(tally(args, "estimate", "--customer", "cus_a", "--store", store, "--config", config, "--json"))
    period_start = datetime.datetime.fromisoformat(usage["period"]["start"].replace("Z", "+00:00"))
    period_end = datetime.datetime.fromisoformat(usage["period"]["end"].replace("Z", "+00:00"))
    days = (period_end - period_start).days
    per_day = [0.0] * days
    for line in lines:
        if line["customer"] == "cus_a" and line["meter"] == "api_calls":
            moment = datetime.datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
            per_day[(moment - period_start).days] += 1

    # The sign-in over plain HTTP: statuses, where it goes, the cookie's flags, the CSP throughout.
    status, headers, body = http(args, "GET", "/ui")
    location = urllib.parse.unquote(headers.get("Location", ""))
    expect(status == 303 and location == "/ui/sign-in?next=/ui", "GET /ui without a session is 303 to /ui/sign-in?next=/ui",
           (status, headers.get("Location")))
    check_headers("GET /ui without a session", status, headers, body, base)
    status, headers, body = http(args, "GET", "/ui/sign-in")
    check_headers("GET /ui/sign-in", status, headers, body, base)
    status, headers, body = raw_sign_in(args, "not-the-key", "/ui")
    expect(status == 401 and 'class="error"' in body and 'id="sign-in"' in body,
           "a wrong key is 401 with the form again and an error", status)
    check_headers("POST /ui/sign-in with a wrong key", status, headers, body, base)
    status, headers, body = raw_sign_in(args, args.read_key, "/ui/customers/cus_a")
    session_cookie = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith("tally_session=")]
    expect(status == 303 and headers.get("Location") == "/ui/customers/cus_a", "the read key is 303 to the page asked for",
           (status, headers.get("Location")))
    flags = [part.strip().lower() for part in session_cookie[0].split(";")] if session_cookie else []
    expect("httponly" in flags and "samesite=strict" in flags, "the session's Set-Cookie has HttpOnly and SameSite=Strict", session_cookie)
    check_headers("POST /ui/sign-in with the read key", status, headers, body, base)
    status, headers, body = raw_sign_in(args, args.admin_key, "https://elsewhere.example/")
    expect(status == 303 and headers.get("Location") == "/ui", "a next outside the dashboard goes to /ui instead", headers.get("Location"))

    driver = browser(1280, 900)
    try:
        # Sign-in: a wrong key, then the admin key.
        sign_in(driver, args, "not-the-key", "/ui/customers/cus_a")
        expect(driver.find_elements(By.CSS_SELECTOR, ".error"), "a wrong key gets the form again with an error")
        field = driver.find_element(By.CSS_SELECTOR, "form#sign-in input[name=key]")
        field.send_keys(args.admin_key)
        navigate(driver, field, Keys.ENTER)
        expect(driver.current_url.endswith("/ui/customers/cus_a"), "signing in goes on to the page asked for", driver.current_url)
        session = driver.get_cookie("tally_session")
        expect(session and session.get("httpOnly") and session.get("sameSite") == "Strict",
               "the session cookie is HttpOnly and SameSite=Strict", session)
        expect("cus_a" in driver.title, "the customer page's title names the customer", driver.title)

        # The numbers on the page are tally usage's and tally estimate's.
        expect(driver.find_element(By.ID, "plan").text == "starter", "the plan is shown")
        expect(driver.find_element(By.ID, "total").get_attribute("data-amount") == estimate["total"],
               "the amount so far equals tally estimate's total", estimate["total"])
        rows = driver.find_elements(By.CSS_SELECTOR, "table#estimate tbody tr")
        expect(len(rows) == len(estimate["lines"]), "one estimate row per line of tally estimate")
        for row, line in zip(rows, estimate["lines"]):
            quantity = row.find_element(By.CSS_SELECTOR, "td.quantity").get_attribute("data-quantity")
            amount = row.find_element(By.CSS_SELECTOR, "td.amount").get_attribute("data-amount")
            expect(row.get_attribute("data-meter") == line["meter"] and quantity == line["quantity"] and amount == line["amount"],
                   f"estimate row {line['meter']}: quantity {line['quantity']} and amount {line['amount']}", (quantity, amount))
        for meter in usage["meters"]:
            cell = driver.find_element(By.CSS_SELECTOR, f'table#entitlements tr[data-meter="{meter["meter"]}"] td[data-quantity]')
            total = sum(float(m["quantity"]) for m in usage["meters"] if m["meter"] == meter["meter"])
            expect(float(cell.get_attribute("data-quantity")) == total, f"entitlement of {meter['meter']} used = tally usage's {total}")
        text = driver.find_element(By.ID, "total").text
        expect(text.startswith("$"), "the amount is written in the plan's currency", text)
        projected = driver.find_element(By.ID, "projected").get_attribute("data-amount")
        expect(projected == estimate["projected_total"], "the projected amount equals tally estimate's projected_total",
               (projected, estimate["projected_total"]))
        for selector in ("form#sign-out", "table#alerts", "table#entitlements", "section#limits", "a#chart-daily", "a#chart-hourly"):
            expect(driver.find_elements(By.CSS_SELECTOR, selector), f"the customer page has {selector}")
        plan_form = driver.find_element(By.CSS_SELECTOR, "form#assign-plan")
        options = [o.get_attribute("value") for o in plan_form.find_elements(By.CSS_SELECTOR, "select[name=plan] option")]
        expect(plan_form.get_attribute("method") == "post" and plan_form.get_attribute("action") == f"{base}/ui/customers/cus_a/plan"
               and plan_form.find_elements(By.CSS_SELECTOR, "input[type=hidden][name=csrf]") and options == ["starter", "pro"],
               "the plan form posts to /ui/customers/cus_a/plan with a csrf field and both plans", options)
        expect(len(driver.find_elements(By.CSS_SELECTOR, 'svg.usage-chart')) == len(estimate["lines"]), "one usage chart per meter")

        # Charts: daily over the period, then hourly over 7 days.
        check_chart(driver, "api_calls", days, per_day, [period_start + datetime.timedelta(days=d) for d in range(days)])
        check_chart(driver, "tokens", days)
        navigate(driver, driver.find_element(By.ID, "chart-hourly"))
        expect("chart=hourly" in driver.current_url, "the hourly switch is a link")
        hour = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
        last_start = parse_time(driver.find_elements(By.CSS_SELECTOR, 'svg.usage-chart[data-meter="api_calls"] rect.bar')[-1].get_attribute("data-start"))
        first = last_start - datetime.timedelta(hours=167)
        expect(last_start in (hour, hour - datetime.timedelta(hours=1)), "the hourly chart ends with the current hour", last_start)
        check_chart(driver, "api_calls", 168, None, [first + datetime.timedelta(hours=h) for h in range(168)])
        hourly = sum(float(q) for q in numbers(driver, 'svg.usage-chart[data-meter="tokens"] rect.bar', "data-quantity"))
        expect(hourly == 4500, "the hourly tokens bars add up to the 4,500 tokens sent", hourly)
        navigate(driver, driver.find_element(By.ID, "chart-daily"))

        no_horizontal_scroll(driver, "the customer page at 1280 px")
        full_page_screenshot(driver, os.path.join(args.screenshots, "dashboard-customer.png"), 1280)

        # A form without its CSRF token is refused, with the session's cookie.
        cookie = f"tally_session={session['value']}"
        status, headers, body = http(args, "POST", "/ui/customers/cus_a/plan", b"plan=pro",
                                     {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        expect(status == 403 and "security token" in body, "a plan form posted without the CSRF token is refused (403)", status)
        check_headers("POST /ui/customers/cus_a/plan without csrf", status, headers, body, base)
        status, _, _ = http(args, "POST", "/ui/customers/cus_a/plan", b"plan=pro&csrf=forged",
                            {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        expect(status == 403, "a plan form with a wrong CSRF token is refused (403)", status)
        expect(driver.find_element(By.ID, "plan").text == "starter", "the refused forms changed nothing")

        # Assign a plan through the form: the estimate changes, and equals tally estimate again.
        driver.set_window_size(1280, 900)
        Select(driver.find_element(By.CSS_SELECTOR, "form#assign-plan select[name=plan]")).select_by_value("pro")
        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form#assign-plan button[type=submit]"))
        expect(driver.find_element(By.ID, "plan").text == "pro", "the assigned plan is shown")
        rerated = json.loads(tally(args, "estimate", "--customer", "cus_a", "--store", store, "--config", config, "--json"))
        after = driver.find_element(By.ID, "total").get_attribute("data-amount")
        expect(after != estimate["total"] and after == rerated["total"], "the estimate changed and equals tally estimate's new total",
               (estimate["total"], after, rerated["total"]))
        expect(driver.find_element(By.ID, "total").text.startswith("€"), "the new plan's currency is used")

        # Add a limit through the form: its progress bar and steps appear.
        Select(driver.find_element(By.CSS_SELECTOR, "form#add-limit select[name=target]")).select_by_value("api_calls")
        driver.find_element(By.CSS_SELECTOR, "form#add-limit input[name=value]").send_keys("50")
        driver.find_element(By.CSS_SELECTOR, "form#add-limit input[name=notify_at]").send_keys("50, 100")
        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form#add-limit button[type=submit]"))
        bars = driver.find_elements(By.CSS_SELECTOR, "meter.limit")
        expect(len(bars) == 1 and bars[0].get_attribute("value") == "37" and bars[0].get_attribute("max") == "50",
               "the new limit is a progress bar at 37 of 50", [(b.get_attribute("value"), b.get_attribute("max")) for b in bars])
        expect([li.text for li in driver.find_elements(By.CSS_SELECTOR, ".limit-row .steps li")] == ["50 % reached", "100 %"],
               "the limit's steps show which are reached")
        kept = bars[0].get_attribute("data-limit")
        Select(driver.find_element(By.CSS_SELECTOR, "form#add-limit select[name=target]")).select_by_value("tokens")
        driver.find_element(By.CSS_SELECTOR, "form#add-limit input[name=value]").send_keys("10000")
        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form#add-limit button[type=submit]"))
        limits = {b.get_attribute("data-limit"): b.get_attribute("max") for b in driver.find_elements(By.CSS_SELECTOR, "meter.limit")}
        expect(len(limits) == 2 and kept in limits, "a second limit is added beside the first", limits)
        second = next(limit for limit in limits if limit != kept)
        removers = driver.find_elements(By.CSS_SELECTOR, "form.remove-limit")
        expect(len(removers) == 2 and all(f.find_elements(By.CSS_SELECTOR, "input[type=hidden][name=csrf]") for f in removers),
               "each stored limit has a remove form with a csrf field")
        remover = next(f for f in removers if f.get_attribute("action").endswith(f"/limits/{urllib.parse.quote(second)}/remove"))
        navigate(driver, remover.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        left = [b.get_attribute("data-limit") for b in driver.find_elements(By.CSS_SELECTOR, "meter.limit")]
        expect(left == [kept] and driver.current_url.split("?")[0].endswith("/ui/customers/cus_a"),
               "removing a limit through its form leaves the other", (left, driver.current_url))

        # Keyboard: the controls are reachable with Tab.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        focused = [driver.switch_to.active_element.tag_name]
        for _ in range(40):
            driver.switch_to.active_element.send_keys(Keys.TAB)
            focused.append(driver.switch_to.active_element.tag_name)
        expect({"a", "button", "select", "input"} <= set(focused), "links, buttons, selects and inputs are reached with Tab", sorted(set(focused)))

        # The overview, the list and a meter.
        driver.get(f"{base}/ui")
        expect(len(driver.find_elements(By.CSS_SELECTOR, "svg#ingest-chart rect.bar")) == 48, "the overview charts 48 hours")
        accepted = driver.find_element(By.ID, "accepted").text
        expect(accepted == str(len(lines)), f"the overview counts the {len(lines)} events accepted", accepted)
        for _ in range(60):
            if driver.find_elements(By.CSS_SELECTOR, 'table#top-customers tr[data-customer="cus_a"]'):
                break
            time.sleep(0.5)
            driver.refresh()
        expect(driver.find_elements(By.CSS_SELECTOR, 'table#top-customers tr[data-customer="cus_a"]'), "cus_a is among the top customers")
        for name, value in (("duplicates", "3"), ("rejected", "0"), ("customers-with-usage", str(2 + EXTRA_CUSTOMERS))):
            shown = driver.find_element(By.ID, name).text
            expect(shown == value, f"the overview's #{name} is {value}", shown)
        expect(driver.find_elements(By.CSS_SELECTOR, "table#latest-alerts") and driver.find_elements(By.CSS_SELECTOR, "form#sign-out"),
               "the overview has the latest alerts and the sign-out form")
        no_horizontal_scroll(driver, "the overview at 1280 px")
        driver.get(f"{base}/ui/customers")
        expect(driver.find_elements(By.CSS_SELECTOR, 'table#customers tr[data-customer="cus_b"]'), "the customer list shows cus_b")
        row = driver.find_element(By.CSS_SELECTOR, 'table#customers tr[data-customer="cus_a"]')
        cells = (row.find_element(By.CSS_SELECTOR, "td.plan").text, row.find_element(By.CSS_SELECTOR, "td.amount").get_attribute("data-amount"),
                 row.find_element(By.CSS_SELECTOR, "td.projected").get_attribute("data-amount"))
        expect(cells == ("pro", rerated["total"], rerated["projected_total"]),
               "the list's row of cus_a has its plan, amount and projected amount from tally estimate", cells)
        first_page = [r.get_attribute("data-customer") for r in driver.find_elements(By.CSS_SELECTOR, "table#customers tbody tr")]
        expect(len(first_page) == 25 and first_page == sorted(first_page), "the first page has 25 customers in id order", len(first_page))
        navigate(driver, driver.find_element(By.ID, "next-page"))
        second_page = [r.get_attribute("data-customer") for r in driver.find_elements(By.CSS_SELECTOR, "table#customers tbody tr")]
        everyone = {line["customer"] for line in lines}
        expect(second_page and not set(first_page) & set(second_page) and everyone <= set(first_page) | set(second_page)
               and not driver.find_elements(By.ID, "next-page"), "a#next-page leads to the rest, and the last page has none",
               (second_page, sorted(everyone - set(first_page) - set(second_page))))
        driver.get(f"{base}/ui/customers")
        box = driver.find_element(By.CSS_SELECTOR, "form#search input[name=query]")
        box.send_keys("cus_b")
        navigate(driver, box, Keys.ENTER)
        shown = [row.get_attribute("data-customer") for row in driver.find_elements(By.CSS_SELECTOR, "table#customers tbody tr")]
        expect(shown == ["cus_b"], "searching narrows the list", shown)
        driver.get(f"{base}/ui/meters/api_calls")
        expect(driver.find_elements(By.CSS_SELECTOR, 'svg#meter-chart rect.bar'), "the meter page has its chart")

        # Nothing from elsewhere, no scripts.
        for path in ("/ui", "/ui/customers/cus_a"):
            driver.get(base + path)
            sources = driver.execute_script(
                "return Array.from(document.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))")
            foreign = [s for s in sources if s.startswith("http") and not s.startswith(base)]
            expect(not foreign and not driver.find_elements(By.TAG_NAME, "script"), f"{path} loads nothing from elsewhere and has no script", foreign)
        cookie = f"tally_session={driver.get_cookie('tally_session')['value']}"
        for path in ("/ui", "/ui/customers", "/ui/customers?query=cus_b", "/ui/customers/cus_a", "/ui/customers/cus_a?chart=hourly",
                     "/ui/meters/api_calls"):
            status, headers, body = http(args, "GET", path, headers={"Cookie": cookie})
            if status != 200 or 'id="sign-out"' not in body:
                fail(f"GET {path} signed in: 200 with the sign-out form", status)
            check_headers(f"GET {path}", status, headers, body, base)
        ok("every signed-in page has the sign-out form, the CSP and nothing from elsewhere")
        status, headers, body = http(args, "GET", "/ui/customers/nobody_here", headers={"Cookie": cookie})
        expect(status == 404, "an unknown customer's page is 404", status)
        check_headers("GET /ui/customers/nobody_here", status, headers, body, base)
        status, headers, body = http(args, "GET", "/ui/assets/tally.css")
        expect(status == 200 and not foreign_references(body, base), "the style sheet loads nothing from elsewhere", status)
        ok("the 303s, the 401, the 403s and the 404 carried the CSP too")

        # 390 px wide: no horizontal scroll, and the small screenshot.
        driver.set_window_size(390, 844)
        for path in ("/ui", "/ui/customers", "/ui/customers/cus_a", "/ui/meters/api_calls"):
            driver.get(base + path)
            no_horizontal_scroll(driver, f"{path} at 390 px")
        driver.get(f"{base}/ui/customers/cus_a")
        full_page_screenshot(driver, os.path.join(args.screenshots, "dashboard-customer-390.png"), 390)

        # A read-only session: no forms, and a post (even with its own token) is refused.
        driver.delete_all_cookies()
        driver.set_window_size(1280, 900)
        sign_in(driver, args, args.read_key, "/ui/customers/cus_a")
        expect(not driver.find_elements(By.TAG_NAME, "form") or
               all(f.get_attribute("id") == "sign-out" for f in driver.find_elements(By.TAG_NAME, "form")),
               "a read-only session sees no forms but sign-out")
        token = driver.find_element(By.CSS_SELECTOR, "form#sign-out input[name=csrf]").get_attribute("value")
        status, _, _ = http(args, "POST", "/ui/customers/cus_a/plan", f"plan=starter&csrf={token}".encode(),
                            {"Cookie": f"tally_session={driver.get_cookie('tally_session')['value']}",
                             "Content-Type": "application/x-www-form-urlencoded"})
        expect(status == 403, "a read-only session cannot assign a plan (403)", status)
        navigate(driver, driver.find_element(By.CSS_SELECTOR, "form#sign-out button[type=submit]"))
        driver.get(f"{base}/ui")
        expect("/ui/sign-in" in driver.current_url, "after signing out the dashboard asks to sign in again")

        # The portal: its own customer only.
        status, _, body = http(args, "POST", "/v1/customers/cus_a/portal_tokens", b"", {"Authorization": f"Bearer {args.admin_key}"})
        expect(status == 201, "a portal token is minted", status)
        portal = json.loads(body)["token"]
        driver.delete_all_cookies()
        driver.get(f"{base}/portal/cus_a?token={urllib.parse.quote(portal)}")
        expect(driver.find_elements(By.CSS_SELECTOR, 'svg.usage-chart[data-meter="api_calls"]') and
               driver.find_elements(By.CSS_SELECTOR, "table#estimate"), "the portal shows the customer's charts and estimate")
        expect(not driver.find_elements(By.TAG_NAME, "form"), "the portal has no forms")
        expect(len(driver.find_elements(By.CSS_SELECTOR, "meter.limit")) == 1, "the portal shows the customer's limit")
        switch = driver.find_element(By.ID, "chart-hourly").get_attribute("href")
        expect("chart=hourly" in switch and "token=" in switch, "the portal's chart switch keeps the token", switch)
        expect("cus_b" not in driver.page_source, "the portal shows nothing of another customer")
        driver.set_window_size(390, 844)
        no_horizontal_scroll(driver, "the portal at 390 px")
        driver.get(f"{base}/portal/cus_b?token={urllib.parse.quote(portal)}")
        expect("Not your page" in driver.page_source, "the token does not open another customer's page")
        status, headers, body = http(args, "GET", f"/portal/cus_b?token={urllib.parse.quote(portal)}")
        expect(status == 403, "another customer's portal page is 403", status)
        check_headers("GET /portal/cus_b with cus_a's token", status, headers, body, base, portal=True)
        status, headers, body = http(args, "GET", "/portal/cus_a?token=tp1.forged.token")
        expect(status == 401, "a forged portal token is 401", status)
        check_headers("GET /portal/cus_a with a forged token", status, headers, body, base, portal=True)
        status, headers, body = http(args, "GET", "/portal/cus_a")
        expect(status in (400, 401), "a portal page without a token is refused", status)
        for chart in ("daily", "hourly"):
            path = f"/portal/cus_a?token={urllib.parse.quote(portal)}&chart={chart}"
            status, headers, body = http(args, "GET", path)
            expect(status == 200 and "cus_b" not in body and "<form" not in body and 'usage-chart' in body,
                   f"the portal's {chart} page over HTTP: 200, charts, no form, no other customer", status)
            check_headers(f"GET /portal/cus_a ({chart})", status, headers, body, base, portal=True)
        expect("frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), "portal pages are not framed unless configured")
    finally:
        driver.quit()
    print(f"browser-check: {CHECKS} checks passed")


if __name__ == "__main__":
    main()
