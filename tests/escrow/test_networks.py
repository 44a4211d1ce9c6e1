import os

import environ

from escrow.networks import REGISTRY, from_environment

USDT_ON_SEPOLIA = "0x7169D38820dfd117C3FA1f22a697dBA58d90BA06"


def test_the_registry_is_what_each_network_is_without_any_environment(monkeypatch):
    # given an environment that sets nothing about networks
    for name in [n for n in os.environ if n.startswith("KIBO_")]:
        monkeypatch.delenv(name)
    # when the settings read it
    networks = from_environment(environ.Env())
    # then each network is the registry's, less the tokens without a contract
    assert networks["base"] == REGISTRY["base"]
    assert networks["base"].token("USDC").address == "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
    assert set(networks["base-sepolia"].tokens) == {"USDC", "ETH"}
    assert networks["local"].rpc_urls == () and set(networks["local"].tokens) == {"ETH"}


def test_a_deployment_changes_endpoints_confirmations_and_contracts(monkeypatch):
    # given a deployment's environment
    monkeypatch.setenv("KIBO_RPC_URL_BASE", "http://node-a:8545,http://node-b:8545")
    monkeypatch.setenv("KIBO_CONFIRMATIONS_BASE", "12")
    monkeypatch.setenv("KIBO_EXPLORER_URL_BASE", "")
    monkeypatch.setenv("KIBO_TOKEN_BASE_SEPOLIA_USDT", USDT_ON_SEPOLIA.lower())
    # when the settings read it
    networks = from_environment(environ.Env())
    # then those values replace the registry's, and the token gets its (EIP-55) contract
    base = networks["base"]
    assert base.rpc_urls == ("http://node-a:8545", "http://node-b:8545")
    assert base.confirmations == 12 and base.explorer_url is None
    assert base.chain_id == REGISTRY["base"].chain_id
    assert networks["base-sepolia"].token("USDT").address == USDT_ON_SEPOLIA
    assert networks["base-sepolia"].token_at(USDT_ON_SEPOLIA.lower()).symbol == "USDT"
