"""End-to-end tests: real Chromium (Debian's, driven by Playwright) against the real server,
a real Celery worker and beat, PostgreSQL and the anvil chain.

One browser serves the whole session. Its camera is a video of a known payment QR
(Chromium's fake capture device), so scanning goes through the real camera path. A page
script stands in for a browser wallet (EIP-1193): it forwards each request to anvil, whose
unlocked development accounts sign. Every step is screenshotted under artifacts/e2e/.
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from kibo.env import BASE_DIR
from tests.helpers.browser import ARTIFACTS, CAMERA_QR, qr_image, y4m_of
from tests.helpers.chain import rpc

AXE = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def browser_executable() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is needed for the end-to-end tests (apt-get install chromium)")
    return executable


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # The first camera start and the first worker task take a few seconds on a busy machine.
    expect.set_options(timeout=20_000)
    executable = browser_executable()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    camera = y4m_of(qr_image(CAMERA_QR), ARTIFACTS / "camera.y4m")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                *CHROMIUM_FLAGS,
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def profile_on_disk(browser, tmp_path):
    """A browser context with a profile on disk, as on a phone. Chrome offers to install an
    app only outside incognito, and every context `browser` opens is incognito."""
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile",
        executable_path=browser_executable(),
        headless=True,
        args=CHROMIUM_FLAGS,
    )
    yield context
    context.close()


WALLET_SCRIPT = """
window.ethereum = {
  isKiboTestWallet: true,
  async request({ method, params }) {
    const answer = JSON.parse(await window.__kiboWalletRpc(method, params || []));
    if (answer.error) {
      throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    }
    return answer.result;
  },
  on() {},
  removeListener() {},
};
"""


class Wallet:
    """A browser wallet holding one of anvil's unlocked development accounts."""

    def __init__(self, address: str):
        self.address = address
        self.requests: list[str] = []

    def handle(self, method: str, params: list) -> str:
        self.requests.append(method)
        if method in ("eth_requestAccounts", "eth_accounts"):
            return json.dumps({"result": [self.address.lower()]})
        if method == "wallet_switchEthereumChain":
            if int(params[0]["chainId"], 16) != 31337:
                return json.dumps({"error": {"code": 4902, "message": "unknown chain"}})
            return json.dumps({"result": None})
        if method == "personal_sign":
            message, address = params
            if not re.fullmatch(r"0x[0-9a-fA-F]*", message):
                message = "0x" + message.encode().hex()
            params = [message, address]
        try:
            return json.dumps({"result": rpc(method, *params)})
        except RuntimeError as error:
            return json.dumps({"error": error.args[0]})


@pytest.fixture
def page_for(browser, request):
    """page_for(account, width=..., locale=...) -> a page with that wallet, and the wallet."""
    contexts = []

    def open_page(address: str, *, width: int = 1024, height: int = 800, locale: str = "en-US"):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            permissions=["camera"],
        )
        contexts.append(context)
        wallet = Wallet(address)
        context.expose_function("__kiboWalletRpc", wallet.handle)
        context.add_init_script(script=WALLET_SCRIPT)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page, wallet

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shoot(request):
    """shoot(page, step): a screenshot of the step, under artifacts/e2e/<test>/."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = iter(range(1, 100))

    def take(page, step: str) -> Path:
        path = folder / f"{next(count):02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


def accessibility_violations(page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return found


@pytest.fixture
def accessible():
    """accessible(page): assert axe-core finds nothing serious or critical."""

    def check(page) -> None:
        violations = accessibility_violations(page)
        assert violations == [], json.dumps(violations, indent=2)

    return check


@pytest.fixture
def kibo_running(celery_worker, celery_beat):
    """The real worker and beat behind the live server, with a fresh USDT/BOB quote."""
    from tests.factories import make_quote

    make_quote(token="USDT", fiat="BOB", rate="10.00")
    celery_worker()
    celery_beat()
