"""Signing in with Ethereum as a browser wallet does: ask for the message, sign it, post it."""

from eth_account.messages import encode_defunct


def sign(account, text: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


def prepared(client, account, chain_id: int = 31337) -> str:
    response = client.get("/auth/nonce/", {"address": account.address, "chain_id": chain_id})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["nonce"] in body["message"]
    return body["message"]


def sign_in(client, account, text: str | None = None, signature: str | None = None):
    text = prepared(client, account) if text is None else text
    return client.post(
        "/auth/login/", {"message": text, "signature": signature or sign(account, text)}
    )
