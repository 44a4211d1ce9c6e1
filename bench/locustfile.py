"""What bench/load.py runs locust with: allies polling the board, payers paying a QR.

Everyone is signed in already (bench/load.py made their sessions and wrote them to the plan
file named by KIBO_LOAD_PLAN). An ally polls /ally/board/?v=<the version it shows> as the
board's own script does, and swaps in the new board when the answer is 200. A payer, at a
random moment of the measured part of the run, does what the phone does: sends the QR's
text for a price, creates the order, signs the payment the order page asks for with the
payer's own key and sends it to the local chain, reports the transaction, then watches the
status panel until someone takes the order.

The cluster run (bench/cluster.py) asks for more. With `work` in the plan, an ally whose
board shows orders takes one now and then (`take_chance` a poll), opens it, pays the QR in its
bank's app (`pay_seconds`, a range), uploads the receipt and looks at its stats; a share of
the allies (`stall_share`) take an order and never pay it, so its timer runs out. With
`repeat`, a payer whose order is over (the status panel stops polling) looks at its history
and pays another QR.
"""

import io
import json
import os
import random
import re
import secrets
import time
from html import unescape
from pathlib import Path

import requests
from eth_account import Account
from locust import FastHttpUser, constant_pacing, task
from PIL import Image
from urllib3 import encode_multipart_formdata

PLAN = json.loads(Path(os.environ["KIBO_LOAD_PLAN"]).read_text())
ALLIES = list(PLAN["allies"])  # session keys, one per simulated ally
PAYERS = list(PLAN["payers"])  # [session key, private key], one per simulated payer
VERSION = re.compile(r"/ally/board/\?v=([0-9a-f]+)")
TAKE = re.compile(r'action="(/ally/orders/[0-9a-f-]+/take/)"')
WORK = PLAN.get("work")  # allies take and pay orders (the cluster run), or only poll
STOP_POLLING = 286  # htmx's answer when a polled panel will not change any more


def _receipt() -> bytes:
    """A bank receipt's screenshot, different every time (one receipt proves one payment)."""
    picture = Image.new("RGB", (240, 320), "white")
    picture.paste(Image.frombytes("RGB", (40, 20), secrets.token_bytes(40 * 20 * 3)), (100, 150))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _attribute(page: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', page)
    if found is None:
        raise ValueError(f"the order page has no {name}")
    return unescape(found.group(1))


class _SignedIn(FastHttpUser):
    abstract = True

    def sign_in(self, session: str) -> None:
        self.csrf = secrets.token_hex(16)  # Django accepts a 32-character secret as is
        self.headers = {
            "Cookie": f"sessionid={session}; csrftoken={self.csrf}",
            "X-CSRFToken": self.csrf,
            "HX-Request": "true",
            "Accept-Language": "es",
        }
        # what the browser sends when it opens a page, rather than htmx asking for a part
        self.page_headers = {k: v for k, v in self.headers.items() if k != "HX-Request"}


class Ally(_SignedIn):
    weight = 1
    wait_time = constant_pacing(PLAN["poll_seconds"])

    def on_start(self) -> None:
        self.sign_in(ALLIES.pop())
        self.version = ""  # the first poll loads the board
        self.offers: list[str] = []  # the take buttons on the board as it shows now
        self.stalls = WORK is not None and random.random() < WORK["stall_share"]

    @task
    def poll(self) -> None:
        with self.client.get(
            f"/ally/board/?v={self.version}",
            headers=self.headers,
            name="ally: board poll",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                found = VERSION.search(response.text)
                if found is None:
                    response.failure("a board without its version")
                    return
                self.version = found.group(1)
                self.offers = TAKE.findall(response.text)
            elif response.status_code != 204:  # 204: the board shows what it showed
                response.failure(f"HTTP {response.status_code}")
        if WORK and self.offers and random.random() < WORK["take_chance"]:
            self.work(random.choice(self.offers))

    def work(self, take_url: str) -> None:
        """Take the order, then pay its QR and upload the receipt (unless this ally stalls)."""
        with self.client.post(
            take_url, headers=self.headers, name="ally: take an order", catch_response=True
        ) as taken:
            order_url = taken.headers.get("HX-Redirect") if taken.status_code == 204 else None
            if taken.status_code == 409:  # another ally was quicker: the board says so
                taken.success()
                return
            if order_url is None:
                taken.failure(f"HTTP {taken.status_code}: {taken.text[:200]}")
                return
        self.client.get(order_url, headers=self.page_headers, name="ally: order page")
        if self.stalls:
            return
        time.sleep(random.uniform(*WORK["pay_seconds"]))  # the bank's app, a gevent sleep
        body, content_type = encode_multipart_formdata(
            {"proof": ("comprobante.png", _receipt(), "image/png")}
        )
        with self.client.post(
            f"{order_url}proof/",
            data=body,
            headers={**self.headers, "Content-Type": content_type},
            name="ally: upload the receipt",
            catch_response=True,
        ) as uploaded:
            if uploaded.status_code != 204:
                uploaded.failure(f"HTTP {uploaded.status_code}: {uploaded.text[:200]}")
                return
        self.client.get("/ally/stats/", headers=self.page_headers, name="ally: stats")


class Payer(_SignedIn):
    abstract = not PAYERS  # a fixed count of 0 would be read as "no fixed count"
    fixed_count = len(PAYERS)
    wait_time = constant_pacing(5)  # the status panel's polling interval

    def on_start(self) -> None:
        session, key = PAYERS.pop()
        self.sign_in(session)
        self.account = Account.from_key(key)
        self.order_url = None
        # Payers come at random moments of the measured part of the run, not all at once.
        self.pay_at = PLAN["measured_from"] + random.uniform(0, PLAN["pay_within"])

    def _post(self, url: str, data: dict, name: str, expect: int):
        with self.client.post(
            url, data=data, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != expect:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return None
            return response

    def pay(self) -> None:
        self.order_url = ""  # once, whatever happens
        qr = {"qr_text": PLAN["qr"]}
        if self._post("/orders/qr/", qr, "payer: price a QR", 200) is None:
            return
        order = {**qr, **PLAN["order"]}
        with self.client.post(
            "/orders/",
            data=order,
            headers=self.page_headers,
            name="payer: create the order",
            allow_redirects=False,
            catch_response=True,
        ) as created:
            if created.status_code != 302:
                created.failure(f"HTTP {created.status_code}: {created.text[:200]}")
                return
            self.order_url = created.headers["Location"]
        page = self.client.get(
            self.order_url, headers=self.page_headers, name="payer: order page"
        ).text
        tx_hash = self._send_payment(page)
        self._post(
            f"{self.order_url}deposit/", {"tx_hash": tx_hash}, "payer: report the payment", 200
        )

    def _send_payment(self, page: str) -> str:
        """What the payer's wallet does with the transaction the order page proposes."""
        transaction = {
            "to": _attribute(page, "data-tx-to"),
            "value": int(_attribute(page, "data-tx-value")),
            "data": _attribute(page, "data-tx-data"),
            "chainId": int(_attribute(page, "data-chain-id")),
            "nonce": self._rpc("eth_getTransactionCount", [self.account.address, "pending"]),
            "gas": 200_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
        }
        signed = self.account.sign_transaction(transaction)
        return self._rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])

    def _rpc(self, method: str, params: list):
        answer = requests.post(
            PLAN["rpc_url"],
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=10,
        ).json()
        if "error" in answer:
            raise RuntimeError(f"the chain refused {method}: {answer['error']}")
        result = answer["result"]
        return int(result, 16) if method == "eth_getTransactionCount" else result

    @task
    def act(self) -> None:
        if self.order_url is None:
            time.sleep(max(0.0, self.pay_at - time.time()))  # a gevent sleep under locust
            self.pay()
            if PLAN.get("repeat") and not self.order_url:  # it failed before an order
                self.order_url, self.pay_at = None, time.time() + 5
        elif self.order_url:
            with self.client.get(
                f"{self.order_url}status/",
                headers=self.headers,
                name="payer: status poll",
                catch_response=True,
            ) as status:
                if status.status_code != STOP_POLLING:
                    return
                status.success()  # an answer like 200, which locust's client does not know
            # the page stops polling; with `repeat`, the payer looks back, then pays the next QR
            self.order_url, self.pay_at = (None if PLAN.get("repeat") else ""), time.time()
            if PLAN.get("repeat"):
                self.client.get("/orders/", headers=self.page_headers, name="payer: history")
